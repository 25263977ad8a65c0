import logging

import pytest

from conftest import ticket_payload
from tickets import tasks
from tickets.models import RedeliveredMessage, WorkflowTicket

pytestmark = pytest.mark.django_db


def _deliver(payload: dict, *, message_id: str, redelivered: bool) -> dict:
    """Run receive_ticket as a worker does for a message the broker flagged (or not) as redelivered."""
    tasks.receive_ticket.push_request(id=message_id, delivery_info={"redelivered": redelivered})
    try:
        return tasks.receive_ticket.run(payload)
    finally:
        tasks.receive_ticket.pop_request()


def test_redeliveries_are_counted_and_the_message_still_processed_below_the_cap(settings):
    settings.TICKET_MESSAGE_MAX_REDELIVERIES = 3

    first = _deliver(ticket_payload("TX-R1"), message_id="m-1", redelivered=False)
    again = _deliver(ticket_payload("TX-R1"), message_id="m-1", redelivered=True)

    assert first["action"] == "created"
    assert again["action"] == "updated"
    message = RedeliveredMessage.objects.get(message_id="m-1")
    assert message.redeliveries == 1
    assert not message.dropped
    assert message.ticket_number == "TX-R1"


def test_a_message_redelivered_up_to_the_cap_is_dropped_with_a_logged_reason(settings, caplog):
    settings.TICKET_MESSAGE_MAX_REDELIVERIES = 3

    results = [_deliver(ticket_payload("TX-R2"), message_id="m-2", redelivered=True) for _ in range(3)]

    assert [r["status"] for r in results] == ["success", "success", "error"]
    assert "redelivered 3 times" in results[-1]["errors"]["non_field_errors"][0]
    assert RedeliveredMessage.objects.get(message_id="m-2").dropped
    assert "Dropped ticket message m-2" in caplog.text


def test_a_dropped_message_that_never_got_through_writes_no_ticket(settings):
    settings.TICKET_MESSAGE_MAX_REDELIVERIES = 1

    result = _deliver(ticket_payload("TX-R3"), message_id="m-3", redelivered=True)

    assert result["status"] == "error"
    assert not WorkflowTicket.objects.filter(ticket_number="TX-R3").exists()


def test_first_deliveries_are_not_counted(db):
    _deliver(ticket_payload("TX-R4"), message_id="m-4", redelivered=False)

    assert not RedeliveredMessage.objects.exists()


def test_a_malformed_ticket_number_is_not_recorded(settings, caplog):
    payload = ticket_payload("TX-R5", ticket_id={"email": "juan.delacruz@example.com"})

    with caplog.at_level(logging.INFO):
        _deliver(payload, message_id="m-5", redelivered=True)

    assert RedeliveredMessage.objects.get(message_id="m-5").ticket_number == ""
    assert "juan.delacruz" not in caplog.text
