"""Non-staff callers see and touch only their own assignments; staff configure and drive everything."""

import pytest

from task.models import Task
from tests.api.conftest import ASSIGNEE_ID, OTHER_USER_ID
from workflow.models import Roles, Steps, Workflows

TASKS = "/tasks/api/tasks/"


def test_non_staff_lists_only_tasks_assigned_to_them(
    assignee, other_user, staff, assigned_task, unassigned_task
):
    mine = assignee.get(TASKS).json()
    theirs = other_user.get(TASKS).json()
    everything = staff.get(TASKS).json()

    assert [item["task_id"] for item in mine["results"]] == [assigned_task.pk]
    assert theirs["count"] == 0
    assert {item["task_id"] for item in everything["results"]} == {assigned_task.pk, unassigned_task.pk}


def test_non_staff_reading_a_task_not_assigned_to_them_is_404(assignee, other_user, staff, assigned_task):
    path = f"{TASKS}{assigned_task.pk}/"

    assert assignee.get(path).status_code == 200
    assert other_user.get(path).status_code == 404
    assert staff.get(path).status_code == 200


def test_filters_apply_within_the_callers_own_tasks(assignee, assigned_task, unassigned_task):
    response = assignee.get(TASKS, {"ticket_id": unassigned_task.ticket_id})

    assert response.json()["count"] == 0


def test_assignee_may_change_their_own_status(assignee, assigned_task):
    response = assignee.post(
        f"{TASKS}{assigned_task.pk}/update_user_status/",
        {"user_id": ASSIGNEE_ID, "status": "in_progress"},
        format="json",
    )

    assert response.status_code == 200
    assigned_task.refresh_from_db()
    assert assigned_task.get_assigned_users_by_status("in_progress")[0]["userID"] == ASSIGNEE_ID


def test_assignee_changing_a_colleagues_status_is_403(assignee, assigned_task):
    response = assignee.post(
        f"{TASKS}{assigned_task.pk}/update_user_status/", {"user_id": 6, "status": "completed"}, format="json"
    )

    assert response.status_code == 403
    assigned_task.refresh_from_db()
    assert assigned_task.get_assigned_users_by_status("completed") == []


def test_another_user_cannot_reach_a_task_to_change_a_status(other_user, assigned_task):
    response = other_user.post(
        f"{TASKS}{assigned_task.pk}/update_user_status/",
        {"user_id": OTHER_USER_ID, "status": "in_progress"},
        format="json",
    )

    assert response.status_code == 404


def test_staff_may_change_anyones_status(staff, assigned_task):
    response = staff.post(
        f"{TASKS}{assigned_task.pk}/update_user_status/", {"user_id": 6, "status": "completed"}, format="json"
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("action", "body", "staff_status"),
    [
        ("assign_user", {"userID": 9}, 200),
        ("complete_task", None, 200),
        ("move_to_next_step", None, 200),
    ],
)
def test_task_actions_other_than_own_status_need_staff(
    assignee, other_user, staff, assigned_task, tts, action, body, staff_status
):
    path = f"{TASKS}{assigned_task.pk}/{action}/"

    assert assignee.post(path, body, format="json").status_code == 403
    assert other_user.post(path, body, format="json").status_code == 403
    assert Task.objects.get(pk=assigned_task.pk).status == Task.Status.PENDING
    assert staff.post(path, body, format="json").status_code == staff_status


def test_creating_a_task_by_hand_needs_staff(assignee, staff, agent_workflow, tts):
    from tickets.models import WorkflowTicket

    tts.role("Agent", [3, 6])
    ticket = WorkflowTicket.objects.create(
        ticket_number="TX-HAND", subject="By hand", department="IT Department", category="IT Support"
    )
    path = f"{TASKS}create_task_for_ticket/"

    assert assignee.post(path, {"ticket_id": ticket.pk}, format="json").status_code == 403
    assert not Task.objects.filter(ticket=ticket).exists()
    assert staff.post(path, {"ticket_id": ticket.pk}, format="json").status_code == 201


def test_workflow_statistics_need_staff(assignee, staff, assigned_task):
    path = f"{TASKS}workflow_statistics/"

    assert assignee.get(path).status_code == 403
    assert staff.get(path).json()["total_tasks"] == 1


def test_tickets_are_staff_only_because_they_carry_the_requesters_personal_data(
    assignee, staff, assigned_task
):
    ticket_path = f"/tickets/api/tickets/{assigned_task.ticket_id}/"

    assert assignee.get("/tickets/api/tickets/").status_code == 403
    assert assignee.get(ticket_path).status_code == 403
    assert staff.get(ticket_path).status_code == 200


@pytest.fixture
def config(agent_workflow):
    step = agent_workflow.steps.get()
    return {"roles": step.role, "workflows": agent_workflow, "steps": step}


CONFIG_WRITES = {
    "roles": {"name": "Reviewer"},
    "workflows": {"name": "Another", "department": "HR", "category": "Leave"},
    "steps": None,  # filled in with the fixture's ids
}


def _create_body(resource: str, config: dict) -> dict:
    if resource == "steps":
        return {"workflow": config["workflows"].pk, "role": config["roles"].pk, "name": "Review", "order": 2}
    return CONFIG_WRITES[resource]


@pytest.mark.parametrize("resource", ["roles", "workflows", "steps"])
def test_any_authenticated_caller_reads_workflow_configuration(assignee, config, resource):
    obj = config[resource]

    assert assignee.get(f"/workflow/api/{resource}/").json()["count"] == 1
    assert assignee.get(f"/workflow/api/{resource}/{obj.pk}/").status_code == 200


@pytest.mark.parametrize("resource", ["roles", "workflows", "steps"])
def test_only_staff_write_workflow_configuration(assignee, other_user, staff, config, resource):
    obj = config[resource]
    collection = f"/workflow/api/{resource}/"
    item = f"{collection}{obj.pk}/"
    body = _create_body(resource, config)

    for caller in (assignee, other_user):
        assert caller.post(collection, body, format="json").status_code == 403
        assert caller.patch(item, {"description": "changed"}, format="json").status_code == 403
        assert caller.put(item, body, format="json").status_code == 403
        assert caller.delete(item).status_code == 403
    counts = (Roles.objects.count(), Workflows.objects.count(), Steps.objects.count())
    assert counts == (1, 1, 1)

    assert staff.post(collection, body, format="json").status_code == 201
    assert staff.patch(item, {"description": "changed"}, format="json").status_code == 200


def test_deleting_configuration_still_in_use_is_409_not_500(staff, assigned_task):
    role = assigned_task.current_step.role

    response = staff.delete(f"/workflow/api/roles/{role.pk}/")

    assert response.status_code == 409
    assert response.json()["code"] == "protected"
    assert Roles.objects.filter(pk=role.pk).exists()


# Every operation, as a caller with no assignment on the task and as staff.
# Staff deletes answer 409 here because the fixture's task still uses the objects.
MATRIX = [
    ("get", "/tasks/api/tasks/", None, 200, 200),
    ("get", "/tasks/api/tasks/{task}/", None, 404, 200),
    ("post", "/tasks/api/tasks/create_task_for_ticket/", {"ticket_id": "{ticket}"}, 403, 200),
    ("post", "/tasks/api/tasks/{task}/assign_user/", {"userID": 9}, 403, 200),
    (
        "post",
        "/tasks/api/tasks/{task}/update_user_status/",
        {"user_id": 3, "status": "in_progress"},
        404,
        200,
    ),
    ("post", "/tasks/api/tasks/{task}/complete_task/", None, 403, 200),
    ("post", "/tasks/api/tasks/{task}/move_to_next_step/", None, 403, 200),
    ("get", "/tasks/api/tasks/workflow_statistics/", None, 403, 200),
    ("get", "/tickets/api/tickets/", None, 403, 200),
    ("get", "/tickets/api/tickets/{ticket}/", None, 403, 200),
    ("get", "/workflow/api/roles/", None, 200, 200),
    ("post", "/workflow/api/roles/", {"name": "Reviewer"}, 403, 201),
    ("get", "/workflow/api/roles/{role}/", None, 200, 200),
    ("put", "/workflow/api/roles/{role}/", {"name": "Renamed"}, 403, 200),
    ("patch", "/workflow/api/roles/{role}/", {"description": "d"}, 403, 200),
    ("delete", "/workflow/api/roles/{role}/", None, 403, 409),
    ("get", "/workflow/api/workflows/", None, 200, 200),
    ("post", "/workflow/api/workflows/", {"name": "New", "department": "HR", "category": "Leave"}, 403, 201),
    ("get", "/workflow/api/workflows/{workflow}/", None, 200, 200),
    (
        "put",
        "/workflow/api/workflows/{workflow}/",
        {"name": "W", "department": "IT", "category": "S"},
        403,
        200,
    ),
    ("patch", "/workflow/api/workflows/{workflow}/", {"description": "d"}, 403, 200),
    ("delete", "/workflow/api/workflows/{workflow}/", None, 403, 409),
    ("get", "/workflow/api/steps/", None, 200, 200),
    (
        "post",
        "/workflow/api/steps/",
        {"workflow": "{workflow}", "role": "{role}", "name": "Two", "order": 2},
        403,
        201,
    ),
    ("get", "/workflow/api/steps/{step}/", None, 200, 200),
    (
        "put",
        "/workflow/api/steps/{step}/",
        {"workflow": "{workflow}", "role": "{role}", "name": "S"},
        403,
        200,
    ),
    ("patch", "/workflow/api/steps/{step}/", {"name": "Renamed"}, 403, 200),
    ("delete", "/workflow/api/steps/{step}/", None, 403, 409),
]


def _fill(value: object, ids: dict[str, int]) -> object:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "body", "as_other_user", "as_staff"),
    MATRIX,
    ids=[f"{method} {path}" for method, path, *_ in MATRIX],
)
@pytest.mark.parametrize("caller", ["other_user", "staff"])
def test_every_endpoint_as_another_user_and_as_staff(
    request, tts, assigned_task, caller, method, path, body, as_other_user, as_staff
):
    tts.role("Agent", [3, 6])
    step = assigned_task.current_step
    ids = {
        "task": assigned_task.pk,
        "ticket": assigned_task.ticket_id,
        "workflow": assigned_task.workflow_id,
        "step": step.pk,
        "role": step.role_id,
    }
    client = request.getfixturevalue(caller)

    response = getattr(client, method)(_fill(path, ids), _fill(body, ids), format="json")

    assert response.status_code == (as_staff if caller == "staff" else as_other_user), response.content
