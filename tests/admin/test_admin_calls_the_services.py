"""Admin changes tasks and configuration only through the services, as the API does."""

from unittest import mock

import pytest

from conftest import make_workflow
from task import services as task_services
from task.models import Task, TaskEvent
from tickets.models import WorkflowTicket
from workflow.models import Roles, Steps, Workflows

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_roles(db) -> tuple[Roles, Roles]:
    return Roles.objects.create(name="IT Support Technician"), Roles.objects.create(name="IT Lead")


@pytest.fixture
def task(two_roles, tts) -> Task:
    tts.role(two_roles[0].name, [3, 6, 7, 10])
    tts.role(two_roles[1].name, [8, 9])
    make_workflow(steps=list(two_roles))
    ticket = WorkflowTicket.objects.create(
        ticket_number="TX-1", subject="Printer", department="IT Department", category="IT Support"
    )
    created, _ = task_services.task_create_for_ticket(ticket_id=ticket.pk)
    return created


def _action(client, name: str, task: Task):
    return client.post("/admin/task/task/", {"action": name, "_selected_action": [task.pk]}, follow=True)


def test_complete_action_completes_through_the_service_and_sends_the_notification(
    superuser_client, task, django_capture_on_commit_callbacks
):
    Workflows.objects.filter(pk=task.workflow_id).update(end_logic=Workflows.EndLogic.NOTIFICATION)

    with (
        mock.patch("task.services.celery_app.send_task") as send_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = _action(superuser_client, "complete_tasks", task)

    assert "1 task(s) completed." in response.content.decode()
    assert Task.objects.get(pk=task.pk).status == Task.Status.COMPLETED
    assert TaskEvent.objects.filter(task=task, kind="completed").get().actor.startswith("admin:")
    send_task.assert_called_once()


def test_complete_action_on_a_completed_task_says_why_it_was_refused(superuser_client, task):
    task_services.task_complete(task_id=task.pk)

    response = _action(superuser_client, "complete_tasks", task)

    assert response.status_code == 200
    assert f"task {task.pk}:" in response.content.decode()


def test_next_step_action_assigns_the_next_steps_role(superuser_client, task):
    response = _action(superuser_client, "move_tasks_to_next_step", task)

    moved = Task.objects.get(pk=task.pk)
    assert "1 task(s) moved on." in response.content.decode()
    assert moved.current_step.order == 2
    assert moved.get_assigned_user_ids() == [8, 9]


def test_reassign_page_lets_the_strategy_pick_a_replacement(superuser_client, task):
    page = f"/admin/task/task/{task.pk}/reassign/"
    assert superuser_client.get(page).status_code == 200

    response = superuser_client.post(page, {"from_user_id": "3", "to_user_id": ""})

    assert response.status_code == 302
    assert Task.objects.get(pk=task.pk).get_assigned_user_ids() == [6, 7, 10]


def test_reassign_page_refuses_a_user_outside_the_role_on_that_field(superuser_client, task):
    response = superuser_client.post(
        f"/admin/task/task/{task.pk}/reassign/", {"from_user_id": "3", "to_user_id": "99"}
    )

    assert response.status_code == 200
    assert "User 99 is not in role" in str(response.context["form"].errors["to_user_id"])
    assert Task.objects.get(pk=task.pk).get_assigned_user_ids() == [3, 6, 7]


def test_saving_the_task_page_changes_nothing(superuser_client, task):
    task_services.task_complete(task_id=task.pk)
    stale = Task.objects.get(pk=task.pk)
    Task.objects.filter(pk=task.pk).update(status=Task.Status.PENDING)

    # Posting the page writes none of the fields shown, whatever the form carries.
    superuser_client.post(
        f"/admin/task/task/{task.pk}/change/",
        {"status": "completed", "current_step": "", "workflow": "", "_save": "Save"},
    )

    assert Task.objects.get(pk=task.pk).status == Task.Status.PENDING
    assert stale.status == Task.Status.COMPLETED


def test_a_steps_workflow_cannot_change_once_it_exists(superuser_client, two_roles):
    first = make_workflow(name="First", steps=[two_roles[0]])
    other = make_workflow(name="Other", category="Other", steps=[two_roles[1]])
    step = first.steps.get()

    page = superuser_client.get(f"/admin/workflow/steps/{step.pk}/change/")
    superuser_client.post(
        f"/admin/workflow/steps/{step.pk}/change/",
        {"workflow": other.pk, "role": two_roles[0].pk, "name": "Moved", "order": 5, "_save": "Save"},
    )

    assert 'name="workflow"' not in page.content.decode()
    assert Steps.objects.get(pk=step.pk).workflow_id == first.pk


def test_the_api_and_admin_refuse_a_deployed_workflow_without_steps_with_the_same_rule(
    superuser_client, api_client
):
    api = api_client.post(
        "/workflow/api/workflows/",
        {"name": "Empty", "department": "D", "category": "C", "status": "deployed"},
        format="json",
    )
    form = {
        "name": "Empty",
        "department": "D",
        "category": "C",
        "sub_category": "",
        "status": "deployed",
        "end_logic": "",
        "steps-TOTAL_FORMS": "0",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    admin_answer = superuser_client.post("/admin/workflow/workflows/add/", form)

    message = "A workflow with no steps cannot be deployed; add steps first."
    assert api.status_code == 400
    assert api.json()["status"] == [message]
    assert message in admin_answer.content.decode()
    assert not Workflows.objects.exists()


def test_hold_resume_and_cancel_actions_ask_for_a_reason_and_go_through_the_services(superuser_client, task):
    asked = superuser_client.post(
        "/admin/task/task/", {"action": "hold_tasks", "_selected_action": [task.pk]}
    )
    assert asked.status_code == 200 and b'name="reason"' in asked.content
    assert Task.objects.get(pk=task.pk).status == Task.Status.PENDING  # nothing done before the reason

    def apply(action: str, reason: str):
        return superuser_client.post(
            "/admin/task/task/",
            {"action": action, "_selected_action": [task.pk], "apply": "1", "reason": reason},
            follow=True,
        )

    apply("hold_tasks", "Waiting for the vendor")
    assert Task.objects.get(pk=task.pk).status == Task.Status.ON_HOLD
    apply("resume_tasks", "")
    assert Task.objects.get(pk=task.pk).status == Task.Status.PENDING
    apply("cancel_tasks", "Duplicate of TX-0")
    assert Task.objects.get(pk=task.pk).status == Task.Status.CANCELLED
    refused = apply("resume_tasks", "")
    assert any("task" in str(message) for message in refused.context["messages"])
    held, resumed, cancelled = TaskEvent.objects.filter(
        task=task, kind__in=["held", "resumed", "cancelled"]
    ).order_by("id")
    assert held.details["reason"] == "Waiting for the vendor"
    assert held.actor.startswith("admin:")
    assert resumed.kind == "resumed"
    assert cancelled.details["reason"] == "Duplicate of TX-0"
