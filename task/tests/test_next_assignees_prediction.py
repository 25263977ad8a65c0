"""next_assignees foretells exactly what the next real allocations do, for both strategies."""

import pytest

from conftest import make_task, make_workflow, ticket_payload
from task import services
from task.models import Task
from tickets import tasks as ticket_tasks
from workflow.models import Roles, Steps

# Outside any transaction, as on a worker: allocation takes its production path.
pytestmark = pytest.mark.django_db(transaction=True)

ROLE = "Agent"


def _allocate(count: int, *, batch: str = "NEXT") -> list[list[int]]:
    """Deliver `count` new tickets through the real pipeline; each task's assignees, in order."""
    assigned = []
    for number in range(1, count + 1):
        ticket_number = f"TX-{batch}-{number:03d}"
        ticket_tasks.receive_ticket.delay(ticket_payload(ticket_number)).get()
        assigned.append(Task.objects.get(ticket__ticket_number=ticket_number).get_assigned_user_ids())
    return assigned


def _predicted(client, step: Steps, count: int) -> list[list[int]]:
    response = client.get(f"/workflow/api/steps/{step.pk}/next_assignees/", {"count": count})
    assert response.status_code == 200
    return [entry["user_ids"] for entry in response.json()["next"]]


def _step(**fields) -> Steps:
    workflow = make_workflow(steps=[Roles.objects.create(name=ROLE)])
    step = workflow.steps.get()
    Steps.objects.filter(pk=step.pk).update(**fields)
    step.refresh_from_db()
    return step


def test_round_robin_allocations_go_where_next_assignees_said(api_client, tts):
    step = _step(assignment_strategy="round_robin", max_assignees=2)
    tts.role(ROLE, [3, 6, 7, 8, 9])
    # The rotation has moved already, and one user is skipped without losing a turn.
    _allocate(1, batch="EARLIER")
    services.availability_set(user_id=8, actor="system", status="unavailable")

    predicted = _predicted(api_client, step, 6)
    actual = _allocate(6)

    assert predicted == actual
    assert all(8 not in users for users in predicted)


def test_load_balanced_allocations_go_where_next_assignees_said(api_client, tts):
    step = _step(assignment_strategy="load_balanced", max_assignees=2)
    tts.role(ROLE, [3, 6, 7, 8, 9, 10])
    # Uneven open work in the role, one unavailable user and one near capacity.
    held = make_workflow(name="Held work", department="Elsewhere", steps=[step.role])
    for number, user_ids in enumerate([[3, 6], [3, 6], [3], [9]], start=1):
        make_task(held, number=f"TX-HELD-{number}", users=[{"userID": u, "role": ROLE} for u in user_ids])
    services.availability_set(user_id=7, actor="system", status="unavailable")
    services.availability_set(user_id=10, actor="system", max_open_assignments=2)

    predicted = _predicted(api_client, step, 8)
    actual = _allocate(8)

    assert predicted == actual
    assert all(7 not in users for users in predicted)
    assert sum(10 in users for users in predicted) == 2  # then at capacity
