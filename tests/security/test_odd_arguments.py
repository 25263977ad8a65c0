"""Issue 12, points 4 and 8: odd arguments get a validation outcome, and no valid ticket is lost."""

import pytest

from conftest import make_task, ticket_payload
from task.models import Task
from tickets import services, tasks
from tickets.models import RedeliveredMessage, WorkflowTicket

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("ticket_id", ["abc", "", [1], {"a": 1}, True, 1.5, 0, -1, 2**63, "1"])
def test_create_task_for_ticket_with_an_argument_that_is_not_a_ticket_id_is_refused(ticket_id, tts, workflow):
    tts.role("IT Support Technician", [3])
    # 1.5 once acted on ticket 1: make sure a ticket 1 exists that it could reach.
    WorkflowTicket.objects.create(
        ticket_number="TX1", subject="s", department="IT Department", category="IT Support"
    )

    result = tasks.create_task_for_ticket.delay(ticket_id).get()

    assert result["status"] == "error"
    assert result["error"] == "invalid"
    assert not Task.objects.exists()
    assert WorkflowTicket.objects.get().allocation_attempts == 0
    assert tts.calls == 0


def test_a_valid_ticket_in_a_redelivered_message_with_a_300_character_id_is_stored(tts, workflow):
    tts.role("IT Support Technician", [3, 6, 7])

    outcome = services.ticket_intake(
        payload=ticket_payload("TX-LONG-ID"), message_id="m" * 300, redelivered=True, retried=False
    )

    assert outcome.result["status"] == "success"
    ticket = WorkflowTicket.objects.get(ticket_number="TX-LONG-ID")
    assert ticket.is_task_allocated
    assert Task.objects.get(ticket=ticket).get_assigned_user_ids() == [3, 6, 7]
    # Counted under a digest of the id, so its redeliveries are still bounded.
    (message,) = RedeliveredMessage.objects.all()
    assert message.message_id.startswith("sha256:")
    assert message.redeliveries == 1


@pytest.mark.parametrize("user_id", [2**63, 10**30, 0, -5])
def test_assign_user_refuses_a_user_id_outside_the_ids_tts_can_name(api_client, workflow, user_id):
    task = make_task(workflow, users=[{"userID": 3}])

    response = api_client.post(f"/tasks/api/tasks/{task.pk}/assign_user/", {"userID": user_id}, format="json")

    assert response.status_code == 400
    assert "userID" in response.json()
    assert Task.objects.get(pk=task.pk).get_assigned_user_ids() == [3]
