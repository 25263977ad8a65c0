"""Holding, resuming and cancelling a task: who may, what it does to load, and what history keeps."""

import pytest
from django.db.models import Count

from conftest import client_as
from task import services
from task.models import AssigneeLoad, Assignment, Task, TaskEvent
from task.tests.conftest import assignment, make_task
from workflow_api import errors

pytestmark = pytest.mark.django_db

TASKS = "/tasks/api/tasks/"


def recounted_loads() -> dict[tuple[int, str], int]:
    """Open assignments per (user, role), counted from the rows by the README's definition."""
    rows = (
        Assignment.objects.filter(
            is_current=True, status__in=Assignment.OPEN_STATUSES, task__status__in=Task.ACTIVE_STATUSES
        )
        .values("user_id", "role")
        .annotate(count=Count("id"))
    )
    return {(row["user_id"], row["role"]): row["count"] for row in rows}


def stored_loads() -> dict[tuple[int, str], int]:
    return {
        (row.user_id, row.role): row.open_assignments
        for row in AssigneeLoad.objects.all()
        if row.open_assignments
    }


def test_holding_frees_the_assignees_load_and_resuming_takes_it_back(task):
    services.task_update_user_status(task_id=task.pk, user_id=6, new_status="completed")
    before = stored_loads()

    held = services.task_hold(task_id=task.pk, reason="waiting for the vendor", actor="1")

    assert held.status == Task.Status.ON_HOLD
    assert stored_loads() == recounted_loads() == {}
    resumed = services.task_resume(task_id=task.pk, actor="3")
    assert resumed.status == Task.Status.PENDING
    assert stored_loads() == recounted_loads() == before


def test_resuming_gives_back_the_status_the_task_had_and_leaves_assignees_statuses(task):
    services.task_update_user_status(task_id=task.pk, user_id=3, new_status="in_progress")

    services.task_hold(task_id=task.pk, reason="vendor", actor="1")
    task.refresh_from_db()
    assert [entry["status"] for entry in task.users] == ["in_progress", "assigned"]
    resumed = services.task_resume(task_id=task.pk, actor="1")

    assert resumed.status == Task.Status.IN_PROGRESS
    assert [entry["status"] for entry in resumed.users] == ["in_progress", "assigned"]
    assert stored_loads() == recounted_loads()


def test_cancelling_a_held_or_running_task_leaves_no_load(two_step_workflow):
    running = make_task(two_step_workflow, number="TX-C1")
    held = make_task(two_step_workflow, number="TX-C2", users=[assignment(7)])
    services.task_hold(task_id=held.pk, reason="r", actor="1")

    services.task_cancel(task_id=running.pk, reason="duplicate", actor="1")
    services.task_cancel(task_id=held.pk, reason="duplicate", actor="1")

    assert Task.objects.filter(status=Task.Status.CANCELLED).count() == 2
    assert stored_loads() == recounted_loads() == {}


@pytest.mark.parametrize(
    ("status", "transition"),
    [
        ("on_hold", "hold"),
        ("completed", "hold"),
        ("pending", "resume"),
        ("in_progress", "resume"),
        ("completed", "resume"),
        ("completed", "cancel"),
        ("cancelled", "cancel"),
        ("cancelled", "resume"),
    ],
)
def test_an_illegal_transition_is_refused_and_changes_nothing(two_step_workflow, status, transition):
    task = make_task(two_step_workflow, users=[assignment(3)])
    if status == "on_hold":
        services.task_hold(task_id=task.pk, reason="r")
    elif status == "cancelled":
        services.task_cancel(task_id=task.pk, reason="r")
    elif status != "pending":
        task = make_task(two_step_workflow, number="TX2", users=[assignment(4)], status=status)
    events = TaskEvent.objects.filter(task=task).count()
    loads = stored_loads()

    with pytest.raises(errors.InvalidTransition):
        getattr(services, f"task_{transition}")(task_id=task.pk, reason="again")

    task.refresh_from_db()
    assert task.status == status
    assert TaskEvent.objects.filter(task=task).count() == events
    assert stored_loads() == loads


def test_every_transition_is_in_the_history_with_who_and_why(api_client, task):
    assert api_client.post(f"{TASKS}{task.pk}/hold/", {"reason": "vendor"}, format="json").status_code == 200
    assert (
        client_as(3).post(f"{TASKS}{task.pk}/resume/", {"reason": "back"}, format="json").status_code == 200
    )
    assert api_client.post(f"{TASKS}{task.pk}/cancel/", {"reason": "dup"}, format="json").status_code == 200

    history = api_client.get(f"{TASKS}{task.pk}/history/").json()
    lifecycle = [(e["kind"], e["actor"], e["details"]["reason"]) for e in history if "reason" in e["details"]]
    assert lifecycle == [("held", "1", "vendor"), ("resumed", "3", "back"), ("cancelled", "1", "dup")]


def test_each_transition_answers_with_the_task_as_it_now_is(api_client, task):
    response = api_client.post(f"{TASKS}{task.pk}/hold/", {"reason": "vendor"}, format="json")

    assert response.status_code == 200
    assert (response.json()["task_id"], response.json()["status"]) == (task.pk, "on_hold")
    assert api_client.post(f"{TASKS}{task.pk}/resume/", {}, format="json").json()["status"] == "pending"
    assert api_client.post(f"{TASKS}{task.pk}/cancel/", {"reason": "x"}, format="json").json()["status"] == (
        "cancelled"
    )


def test_resuming_a_task_not_on_hold_answers_409(api_client, task):
    response = api_client.post(f"{TASKS}{task.pk}/resume/", {}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


def test_cancelling_a_completed_task_answers_409(api_client, two_step_workflow):
    task = make_task(two_step_workflow, status="completed")

    assert api_client.post(f"{TASKS}{task.pk}/cancel/", {"reason": "x"}, format="json").status_code == 409


def test_an_assignee_may_hold_and_resume_but_not_cancel(task):
    assignee = client_as(6)

    assert assignee.post(f"{TASKS}{task.pk}/hold/", {"reason": "r"}, format="json").status_code == 200
    assert assignee.post(f"{TASKS}{task.pk}/resume/", {}, format="json").status_code == 200
    assert assignee.post(f"{TASKS}{task.pk}/cancel/", {"reason": "r"}, format="json").status_code == 403
    task.refresh_from_db()
    assert task.status == Task.Status.PENDING


def test_a_former_assignee_may_not_hold_and_a_stranger_does_not_see_the_task(task):
    Assignment.objects.filter(task=task, user_id=6).update(is_current=False)

    assert client_as(6).post(f"{TASKS}{task.pk}/hold/", {"reason": "r"}, format="json").status_code == 403
    assert client_as(99).post(f"{TASKS}{task.pk}/hold/", {"reason": "r"}, format="json").status_code == 404


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": 5}, {"reason": "x" * 501}])
def test_hold_and_cancel_need_a_reason(api_client, task, body):
    for transition in ("hold", "cancel"):
        response = api_client.post(f"{TASKS}{task.pk}/{transition}/", body, format="json")

        assert response.status_code == 400
        assert "reason" in response.json()
