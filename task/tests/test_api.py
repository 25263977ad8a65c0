import pytest

from task.models import Task
from task.tests.conftest import make_task
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.django_db

TASKS = "/tasks/api/tasks/"


def _results(response) -> list[dict]:
    body = response.json()
    return body["results"] if isinstance(body, dict) else body


def test_list_shows_tasks_with_read_only_convenience_fields(api_client, task):
    response = api_client.get(TASKS)

    assert response.status_code == 200
    (item,) = _results(response)
    assert item["task_id"] == task.task_id
    assert item["ticket_id"] == task.ticket_id
    assert item["workflow_id"] == task.workflow_id
    assert item["ticket_subject"] == "Subject TX1"
    assert item["workflow_name"] == "Two steps"
    assert item["current_step_name"] == "Step 1"
    assert item["current_step_role"] == "IT Support Technician"
    assert item["assigned_users_count"] == 2
    assert item["users"][0]["userID"] == 3


def test_list_filters_by_status_ticket_and_workflow(api_client, two_step_workflow):
    pending = make_task(two_step_workflow, number="TX1")
    done = make_task(two_step_workflow, number="TX2", status=Task.Status.COMPLETED)

    by_status = _results(api_client.get(TASKS, {"status": "completed"}))
    by_ticket = _results(api_client.get(TASKS, {"ticket_id": pending.ticket_id}))
    by_workflow = _results(api_client.get(TASKS, {"workflow_id": two_step_workflow.pk}))

    assert [t["task_id"] for t in by_status] == [done.task_id]
    assert [t["task_id"] for t in by_ticket] == [pending.task_id]
    assert {t["task_id"] for t in by_workflow} == {pending.task_id, done.task_id}


def test_invalid_filter_value_is_a_400_with_the_field(api_client, task):
    response = api_client.get(TASKS, {"status": "bogus"})

    assert response.status_code == 400
    assert "status" in response.json()


def test_retrieve_unknown_task_is_404(api_client, db):
    assert api_client.get(f"{TASKS}999999/").status_code == 404


def test_create_task_for_ticket_action_creates_then_returns_existing(api_client, workflow, tts):
    ticket = WorkflowTicket.objects.create(
        ticket_number="TX7", subject="s", department="IT Department", category="IT Support"
    )
    tts.role("IT Support Technician", [3, 6, 7])

    created = api_client.post(f"{TASKS}create_task_for_ticket/", {"ticket_id": ticket.pk}, format="json")
    again = api_client.post(f"{TASKS}create_task_for_ticket/", {"ticket_id": ticket.pk}, format="json")

    assert created.status_code == 201
    assert created.json()["assigned_users_count"] == 3
    assert again.status_code == 200
    assert again.json()["task_id"] == created.json()["task_id"]


@pytest.mark.parametrize(
    ("body", "status_code"),
    [({}, 400), ({"ticket_id": "abc"}, 400), ({"ticket_id": 999999}, 404)],
)
def test_create_task_for_ticket_bad_input(api_client, db, body, status_code):
    response = api_client.post(f"{TASKS}create_task_for_ticket/", body, format="json")

    assert response.status_code == status_code
    if status_code == 400:
        assert "ticket_id" in response.json()


def test_create_task_for_ticket_without_a_workflow_is_409_with_the_reason(api_client, db):
    ticket = WorkflowTicket.objects.create(ticket_number="TX8", subject="s", department="Nowhere")

    response = api_client.post(f"{TASKS}create_task_for_ticket/", {"ticket_id": ticket.pk}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "no_workflow"


def test_create_task_for_ticket_when_tts_is_down_is_503(api_client, workflow, tts):
    ticket = WorkflowTicket.objects.create(
        ticket_number="TX9", subject="s", department="IT Department", category="IT Support"
    )
    tts.fail("IT Support Technician", status=503)

    response = api_client.post(f"{TASKS}create_task_for_ticket/", {"ticket_id": ticket.pk}, format="json")

    assert response.status_code == 503


def test_assign_user_adds_the_user(api_client, task):
    response = api_client.post(
        f"{TASKS}{task.pk}/assign_user/",
        {"userID": 9, "username": "john_doe", "email": "john@example.com", "role": "IT Support Technician"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["assigned_users_count"] == 3
    assert Task.objects.get(pk=task.pk).get_assigned_user_ids() == [3, 6, 9]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"userID": "x"},
        {"userID": 0},
        {"userID": 9, "email": "not-an-email"},
        {"userID": 9, "status": "nope"},
    ],
)
def test_assign_user_bad_input_is_400_with_field_errors(api_client, task, body):
    response = api_client.post(f"{TASKS}{task.pk}/assign_user/", body, format="json")

    assert response.status_code == 400
    assert set(response.json()) & {"userID", "email", "status"}
    assert Task.objects.get(pk=task.pk).get_assigned_user_ids() == [3, 6]


def test_assign_user_already_assigned_is_409(api_client, task):
    response = api_client.post(f"{TASKS}{task.pk}/assign_user/", {"userID": 3}, format="json")

    assert response.status_code == 409


def test_update_user_status(api_client, task):
    response = api_client.post(
        f"{TASKS}{task.pk}/update_user_status/", {"user_id": 3, "status": "in_progress"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "in_progress"
    assert response.json()["users"][0]["status"] == "in_progress"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": 3}, "status"),
        ({"status": "completed"}, "user_id"),
        ({"user_id": 3, "status": "x"}, "status"),
    ],
)
def test_update_user_status_bad_input_is_400(api_client, task, body, field):
    response = api_client.post(f"{TASKS}{task.pk}/update_user_status/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_update_status_of_unassigned_user_is_400(api_client, task):
    response = api_client.post(
        f"{TASKS}{task.pk}/update_user_status/", {"user_id": 99, "status": "completed"}, format="json"
    )

    assert response.status_code == 400


def test_complete_task_and_completing_again_is_409(api_client, task):
    first = api_client.post(f"{TASKS}{task.pk}/complete_task/")
    second = api_client.post(f"{TASKS}{task.pk}/complete_task/")

    assert first.status_code == 200
    assert first.json()["status"] == "completed"
    assert second.status_code == 409


def test_completing_a_cancelled_task_is_409(api_client, two_step_workflow):
    task = make_task(two_step_workflow, status=Task.Status.CANCELLED)

    assert api_client.post(f"{TASKS}{task.pk}/complete_task/").status_code == 409


def test_move_to_next_step_then_from_last_step_completes(api_client, task, tts):
    tts.role("Manager", [11])

    moved = api_client.post(f"{TASKS}{task.pk}/move_to_next_step/")
    finished = api_client.post(f"{TASKS}{task.pk}/move_to_next_step/")
    again = api_client.post(f"{TASKS}{task.pk}/move_to_next_step/")

    assert moved.status_code == 200
    assert moved.json()["current_step_name"] == "Step 2"
    assert moved.json()["current_step_role"] == "Manager"
    assert finished.json()["status"] == "completed"
    assert again.status_code == 409


def test_actions_on_unknown_task_are_404(api_client, db):
    assert api_client.post(f"{TASKS}999999/complete_task/").status_code == 404
    assert api_client.post(f"{TASKS}999999/move_to_next_step/").status_code == 404


def test_workflow_statistics_counts_by_status_and_workflow(api_client, two_step_workflow):
    make_task(two_step_workflow, number="TX1")
    make_task(two_step_workflow, number="TX2", status=Task.Status.COMPLETED)
    make_task(two_step_workflow, number="TX3", status=Task.Status.COMPLETED)

    stats = api_client.get(f"{TASKS}workflow_statistics/").json()

    assert stats["total_tasks"] == 3
    assert stats["by_status"]["completed"] == 2
    assert stats["by_status"]["pending"] == 1
    (per_workflow,) = stats["by_workflow"]
    assert per_workflow["workflow_name"] == "Two steps"
    assert per_workflow["total"] == 3


def test_list_endpoint_does_not_accept_post(api_client, db):
    assert api_client.post(TASKS, {}, format="json").status_code == 405


def test_tickets_api_is_read_only_and_shows_the_allocation_failure(api_client, db):
    WorkflowTicket.objects.create(
        ticket_number="TX5",
        subject="s",
        allocation_error=WorkflowTicket.AllocationError.NO_WORKFLOW,
        allocation_error_detail="No deployed workflow for 'X'",
    )

    listing = api_client.get("/tickets/api/tickets/", {"is_task_allocated": "false"})
    post = api_client.post("/tickets/api/tickets/", {}, format="json")

    (item,) = _results(listing)
    assert item["allocation_failure_reason"] == "No matching workflow: No deployed workflow for 'X'"
    assert post.status_code == 405
