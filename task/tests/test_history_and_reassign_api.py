"""A task's history and staff reassignment through the API, and the task's admin page."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import client_as
from task import services
from task.models import Assignment, Task, TaskEvent
from task.tests.conftest import assignment, make_task
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.django_db

TASKS = "/tasks/api/tasks/"
ROLE = "IT Support Technician"


@pytest.fixture
def allocated_task(two_step_workflow, tts) -> Task:
    """A task allocated by the engine to 3, 6 and 7 (round robin over TTS's [3, 6, 7, 8])."""
    tts.role(ROLE, [3, 6, 7, 8])
    ticket = WorkflowTicket.objects.create(
        ticket_number="TX-H1", subject="s", department="IT Department", category="IT Support"
    )
    task, _ = services.task_create_for_ticket(ticket_id=ticket.pk)
    return task


def test_history_lists_decisions_with_their_candidates_and_every_change_oldest_first(
    api_client, allocated_task
):
    api_client.post(
        f"{TASKS}{allocated_task.pk}/update_user_status/",
        {"user_id": 3, "status": "in_progress"},
        format="json",
    )

    response = api_client.get(f"{TASKS}{allocated_task.pk}/history/")

    assert response.status_code == 200
    decision, change = response.json()
    assert (decision["kind"], decision["actor"]) == ("assigned", "system")
    assert decision["step_id"] == allocated_task.current_step_id
    assert decision["details"]["decision"]["strategy"] == "round_robin"
    assert decision["details"]["decision"]["chosen"] == [3, 6, 7]
    assert decision["details"]["decision"]["candidates"]["user_ids"] == [3, 6, 7, 8]
    assert (change["kind"], change["actor"]) == ("status_changed", "1")
    assert (change["details"]["from"], change["details"]["to"]) == ("assigned", "in_progress")
    assert decision["id"] < change["id"]


def test_history_reads_every_candidate_list_in_one_query(api_client, allocated_task, tts):
    tts.role("Manager", [11, 12])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api_client.get(f"{TASKS}{allocated_task.pk}/history/").status_code == 200
        return len(captured)

    one_decision = queries()
    services.task_reassign(task_id=allocated_task.pk, from_user_id=3)
    services.task_move_to_next_step(task_id=allocated_task.pk)

    assert (
        TaskEvent.objects.filter(task=allocated_task, details__decision__candidates__isnull=False).count()
        == 3
    )
    assert queries() == one_decision


def test_an_assignee_sees_the_history_of_their_task_and_others_do_not(two_step_workflow):
    task = make_task(two_step_workflow, users=[assignment(3)])

    mine = client_as(3).get(f"{TASKS}{task.pk}/history/")
    theirs = client_as(42).get(f"{TASKS}{task.pk}/history/")

    assert mine.status_code == 200
    assert [event["kind"] for event in mine.json()] == ["assigned"]
    assert theirs.status_code == 404


def test_a_former_assignee_still_sees_the_history(api_client, allocated_task):
    api_client.post(
        f"{TASKS}{allocated_task.pk}/reassign/", {"from_user_id": 3, "to_user_id": 8}, format="json"
    )

    response = client_as(3).get(f"{TASKS}{allocated_task.pk}/history/")

    assert response.status_code == 200
    assert [event["kind"] for event in response.json()] == ["assigned", "reassigned"]


def test_staff_reassign_to_a_named_user_of_the_role(api_client, allocated_task):
    response = api_client.post(
        f"{TASKS}{allocated_task.pk}/reassign/", {"from_user_id": 3, "to_user_id": 8}, format="json"
    )

    assert response.status_code == 200
    assert [user["userID"] for user in response.json()["users"]] == [6, 7, 8]
    moved = TaskEvent.objects.filter(task=allocated_task, kind="reassigned").get()
    assert moved.actor == "1"
    assert (moved.details["from_user_id"], moved.details["to_user_id"]) == (3, 8)


def test_staff_reassign_without_a_target_lets_the_strategy_pick_someone_not_on_the_step(
    api_client, allocated_task
):
    response = api_client.post(f"{TASKS}{allocated_task.pk}/reassign/", {"from_user_id": 6}, format="json")

    assert response.status_code == 200
    assert [user["userID"] for user in response.json()["users"]] == [3, 7, 8]
    assert Assignment.objects.get(task=allocated_task, user_id=8).origin == "reassigned"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"from_user_id": 3, "to_user_id": 9}, "to_user_id"),  # not in the role
        ({"from_user_id": 3, "to_user_id": 6}, "to_user_id"),  # already on the step
        ({"from_user_id": 3, "to_user_id": 3}, "to_user_id"),
        ({"from_user_id": 8, "to_user_id": 3}, "from_user_id"),  # 8 holds no assignment
        ({"from_user_id": 9, "to_user_id": 11}, "to_user_id"),  # both wrong: the service names the target
        ({"from_user_id": 8}, "from_user_id"),
        ({"to_user_id": 8}, "from_user_id"),
        ({"from_user_id": 0}, "from_user_id"),
        ({"from_user_id": 3, "to_user_id": 2**63}, "to_user_id"),
    ],
)
def test_a_reassignment_that_does_not_fit_is_a_field_error(api_client, allocated_task, body, field):
    response = api_client.post(f"{TASKS}{allocated_task.pk}/reassign/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert Task.objects.get(pk=allocated_task.pk).get_assigned_user_ids() == [3, 6, 7]


def test_an_empty_form_value_is_refused_not_read_as_no_target(api_client, allocated_task):
    response = api_client.post(
        f"{TASKS}{allocated_task.pk}/reassign/", {"from_user_id": 3, "to_user_id": ""}, format="multipart"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["to_user_id"]
    assert Task.objects.get(pk=allocated_task.pk).get_assigned_user_ids() == [3, 6, 7]


def test_the_not_in_role_error_names_the_user_and_the_role(api_client, allocated_task):
    response = api_client.post(
        f"{TASKS}{allocated_task.pk}/reassign/", {"from_user_id": 3, "to_user_id": 9}, format="json"
    )

    assert response.json() == {"to_user_id": [f"User 9 is not in role '{ROLE}'"]}


def test_reassigning_when_nobody_else_is_eligible_is_a_conflict(api_client, two_step_workflow, tts):
    task = make_task(two_step_workflow)  # users 3 and 6
    tts.role(ROLE, [3, 6])

    response = api_client.post(f"{TASKS}{task.pk}/reassign/", {"from_user_id": 3}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "no_available_users"


def test_reassigning_while_tts_is_down_is_503(api_client, task, tts):
    tts.fail(ROLE, status=503)

    response = api_client.post(f"{TASKS}{task.pk}/reassign/", {"from_user_id": 3}, format="json")

    assert response.status_code == 503


def test_only_staff_reassign(task):
    response = client_as(3).post(
        f"{TASKS}{task.pk}/reassign/", {"from_user_id": 3, "to_user_id": 7}, format="json"
    )

    assert response.status_code == 403


def test_lifecycle_actions_record_the_staff_member_who_acted(api_client, task, tts):
    tts.role("Manager", [11])
    api_client.post(f"{TASKS}{task.pk}/assign_user/", {"userID": 9}, format="json")
    api_client.post(f"{TASKS}{task.pk}/move_to_next_step/")
    api_client.post(f"{TASKS}{task.pk}/complete_task/")

    actors = list(TaskEvent.objects.filter(task=task).order_by("id").values_list("kind", "actor"))

    # The first two are make_task's assignments, done by the service without a caller.
    assert actors[2:] == [("assigned", "1"), ("moved", "1"), ("assigned", "1"), ("completed", "1")]


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123"))
    return client


def test_the_task_admin_page_shows_assignments_and_history_and_keeps_service_fields_read_only(
    admin_client, allocated_task
):
    page = admin_client.get(f"/admin/task/task/{allocated_task.pk}/change/")

    assert page.status_code == 200
    content = page.content.decode()
    assert "History (oldest first)" in content
    assert "Assignments (every step, past and present)" in content
    assert "round_robin" in content
    assert 'name="status"' not in content
    assert 'name="current_step"' not in content
    assert admin_client.get("/admin/task/task/add/").status_code == 403
