"""Steps that move on by themselves when any one, or every one, of their assignees has completed."""

import threading
from unittest import mock

import pytest
from django.db import connection, connections

from conftest import client_as, make_workflow
from task import services
from task.models import Task, TaskEvent, UserAvailability
from task.tests.conftest import make_task
from task.tests.test_lifecycle import recounted_loads, stored_loads
from workflow.models import Steps, Workflows

pytestmark = pytest.mark.django_db

TASKS = "/tasks/api/tasks/"


def with_policy(workflow: Workflows, policy: str) -> Workflows:
    Steps.objects.filter(workflow=workflow, order=1).update(completion_policy=policy)
    return workflow


def complete(task: Task, user_id: int) -> Task:
    return services.task_update_user_status(task_id=task.pk, user_id=user_id, new_status="completed")


def moves(task: Task) -> int:
    events = TaskEvent.objects.filter(task=task, kind="moved").values_list("details", flat=True)
    return sum(1 for details in events if details.get("outcome") != "stayed")


def test_any_moves_the_task_on_when_the_first_assignee_completes(two_step_workflow, tts):
    task = make_task(with_policy(two_step_workflow, "any"))
    tts.role("Manager", [11])

    response = client_as(3).post(
        f"{TASKS}{task.pk}/update_user_status/", {"user_id": 3, "status": "completed"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["current_step"] == two_step_workflow.steps.get(order=2).pk
    assert [user["userID"] for user in response.json()["users"]] == [11]
    assert stored_loads() == recounted_loads()


def test_all_moves_the_task_on_only_when_every_assignee_completed(two_step_workflow, tts):
    task = make_task(with_policy(two_step_workflow, "all"))
    tts.role("Manager", [11])

    assert complete(task, 3).current_step.order == 1
    assert complete(task, 6).current_step.order == 2
    assert moves(task) == 1


def test_manual_steps_wait_for_staff_whatever_the_assignees_do(two_step_workflow, tts):
    task = make_task(two_step_workflow)

    complete(task, 3)
    complete(task, 6)

    task.refresh_from_db()
    assert task.current_step.order == 1
    assert moves(task) == 0


def test_staff_may_still_move_a_task_on_by_hand_whatever_the_policy(two_step_workflow, tts):
    task = make_task(with_policy(two_step_workflow, "all"))
    tts.role("Manager", [11])

    assert services.task_move_to_next_step(task_id=task.pk).current_step.order == 2


def test_from_the_last_step_the_policy_completes_the_task_and_sends_the_end_notification(
    role, tts, django_capture_on_commit_callbacks
):
    workflow = with_policy(make_workflow(steps=[role], end_logic=Workflows.EndLogic.NOTIFICATION), "any")
    task = make_task(workflow)

    with (
        mock.patch("task.services.celery_app.send_task") as send_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        done = complete(task, 6)

    assert done.status == Task.Status.COMPLETED
    (payload,) = send_task.call_args.kwargs["args"]
    assert (payload["event"], payload["task_id"]) == ("task_completed", task.pk)
    assert stored_loads() == recounted_loads()


def test_a_held_task_does_not_move_on_when_an_assignee_completes(two_step_workflow, tts):
    task = make_task(with_policy(two_step_workflow, "any"))
    services.task_hold(task_id=task.pk, reason="vendor")

    assert complete(task, 3).current_step.order == 1


def test_when_nobody_can_take_the_next_step_the_completion_stands_and_the_history_says_why(
    two_step_workflow, tts
):
    task = make_task(with_policy(two_step_workflow, "any"))
    tts.role("Manager", [11])
    UserAvailability.objects.create(user_id=11, status=UserAvailability.Status.UNAVAILABLE)

    response = client_as(3).post(
        f"{TASKS}{task.pk}/update_user_status/", {"user_id": 3, "status": "completed"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["current_step"] == two_step_workflow.steps.get(order=1).pk
    assert {u["userID"]: u["status"] for u in response.json()["users"]}[3] == "completed"
    stayed = TaskEvent.objects.get(task=task, kind="moved", details__outcome="stayed")
    assert "Nobody eligible" in stayed.details["reason"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two database sessions at once need PostgreSQL")
@pytest.mark.parametrize("policy", ["any", "all"])
def test_two_assignees_completing_at_once_move_the_task_exactly_one_step(role, manager, tts, policy):
    workflow = make_workflow(name="Three steps", steps=[role, manager, role])
    with_policy(workflow, policy)
    Steps.objects.filter(workflow=workflow, order=2).update(completion_policy=policy)
    task = make_task(workflow)
    tts.role("Manager", [11, 12])
    barrier = threading.Barrier(2)
    failures: list[Exception] = []

    def finish(user_id: int) -> None:
        try:
            barrier.wait()
            complete(task, user_id)
        except Exception as exc:  # noqa: BLE001  (reported below)
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=finish, args=(user_id,)) for user_id in (3, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    task.refresh_from_db()
    assert task.current_step.order == 2
    assert moves(task) == 1
    assert stored_loads() == recounted_loads()
