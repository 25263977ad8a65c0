import logging

import pytest

from conftest import ticket_payload
from task import services as task_services
from task.models import Task
from tickets import tasks
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.django_db


def _receive(payload, capture):
    """Deliver one message the way a worker does, running what it enqueues after commit."""
    with capture(execute=True):
        return tasks.receive_ticket.delay(payload).get()


def test_new_ticket_is_stored_and_gets_its_task(tts, workflow, django_capture_on_commit_callbacks):
    tts.role("IT Support Technician", [3, 6, 7])

    result = _receive(ticket_payload("TX1"), django_capture_on_commit_callbacks)

    ticket = WorkflowTicket.objects.get()
    assert result == {
        "status": "success",
        "ticket_id": ticket.pk,
        "ticket_number": "TX1",
        "action": "created",
    }
    assert ticket.is_task_allocated
    task = Task.objects.get()
    assert task.ticket == ticket
    assert task.get_assigned_user_ids() == [3, 6, 7]


def test_upstream_ticket_shape_is_accepted_and_every_key_kept(
    tts, role, upstream_payload, django_capture_on_commit_callbacks
):
    from conftest import make_workflow

    workflow = make_workflow(sub_category="Technical Assistance", steps=[role])
    tts.role(role.name, [3, 6, 7])

    result = _receive(upstream_payload, django_capture_on_commit_callbacks)

    assert result["action"] == "created"
    ticket = WorkflowTicket.objects.get()
    assert ticket.ticket_number == "TX20251110000042"
    assert ticket.original_ticket_id == 42
    assert ticket.sub_category == "Technical Assistance"
    assert ticket.subject == "Cannot connect to the office VPN"
    assert ticket.ticket_data == upstream_payload
    assert Task.objects.get().workflow == workflow


def test_second_delivery_of_same_ticket_creates_no_second_task(
    tts, workflow, django_capture_on_commit_callbacks
):
    tts.role("IT Support Technician", [3, 6, 7])
    _receive(ticket_payload("TX1"), django_capture_on_commit_callbacks)

    again = _receive(ticket_payload("TX1"), django_capture_on_commit_callbacks)

    assert again["action"] == "updated"
    assert WorkflowTicket.objects.count() == 1
    assert Task.objects.count() == 1
    # On PostgreSQL the number is found stored in the read that follows TTS's answer:
    # nothing is written.
    assert tts.calls == (2 if task_services.can_create_with_new_ticket() else 1)


def test_update_changes_fields_but_keeps_the_allocation(tts, workflow, django_capture_on_commit_callbacks):
    tts.role("IT Support Technician", [3, 6, 7])
    _receive(ticket_payload("TX1", status="Open"), django_capture_on_commit_callbacks)

    _receive(ticket_payload("TX1", status="Closed", extra="kept"), django_capture_on_commit_callbacks)

    ticket = WorkflowTicket.objects.get()
    assert ticket.status == "Closed"
    assert ticket.ticket_data["extra"] == "kept"
    assert ticket.is_task_allocated
    assert Task.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (["not", "an", "object"], "non_field_errors"),
        ("a string", "non_field_errors"),
        (None, "non_field_errors"),
        ({"ticket_id": "TX1"}, "subject"),
        ({"ticket_id": "TX1", "subject": ""}, "subject"),
        ({"subject": "No number"}, "ticket_number"),
        ({"ticket_id": 17, "subject": "Number is an int"}, "ticket_id"),
        ({"ticket_id": "TX1", "subject": ["a list"]}, "subject"),
        ({"ticket_id": "TX1", "subject": "s", "id": "42"}, "id"),
        ({"ticket_id": "TX1", "subject": "s", "department": {"a": 1}}, "department"),
        ({"ticket_id": "TX1", "subject": "s", "priority": True}, "priority"),
        ({"ticket_id": "TX1", "subject": "x" * 300}, "subject"),
        ({"ticket_id": "TX1", "subject": "s", "notes": "nul \x00 byte"}, "non_field_errors"),
        ({"ticket_id": "TX1", "subject": "s", "amount": float("nan")}, "non_field_errors"),
    ],
)
def test_invalid_messages_return_field_errors_log_a_reason_and_write_nothing(
    caplog, django_capture_on_commit_callbacks, payload, field
):
    with caplog.at_level(logging.WARNING, logger="tickets.tasks"):
        result = _receive(payload, django_capture_on_commit_callbacks)

    assert result["status"] == "error"
    assert field in result["errors"]
    assert "Rejected ticket message" in caplog.text
    assert not WorkflowTicket.objects.exists()
    assert not Task.objects.exists()


def test_unknown_keys_and_nulls_never_reject_a_ticket(django_capture_on_commit_callbacks):
    payload = ticket_payload("TX9", description=None, priority=None, whatever={"nested": [1, None]})

    result = _receive(payload, django_capture_on_commit_callbacks)

    assert result["status"] == "success"
    ticket = WorkflowTicket.objects.get()
    assert ticket.description == ""
    assert ticket.ticket_data["whatever"] == {"nested": [1, None]}


def test_an_older_version_arriving_late_does_not_overwrite_a_newer_one(django_capture_on_commit_callbacks):
    newer = ticket_payload("TX-ORDER", status="Closed", updated_at="2025-11-10T10:00:00+08:00")
    older = ticket_payload("TX-ORDER", status="Open", updated_at="2025-11-10T09:00:00+08:00")

    _receive(newer, django_capture_on_commit_callbacks)
    late = _receive(older, django_capture_on_commit_callbacks)

    ticket = WorkflowTicket.objects.get()
    assert late["status"] == "success"
    assert ticket.status == "Closed"
    assert ticket.ticket_data["updated_at"] == "2025-11-10T10:00:00+08:00"


def test_versions_without_a_timestamp_apply_in_arrival_order(django_capture_on_commit_callbacks):
    _receive(ticket_payload("TX-NOTIME", status="Open"), django_capture_on_commit_callbacks)
    _receive(
        ticket_payload("TX-NOTIME", status="Closed", updated_at="not a date"),
        django_capture_on_commit_callbacks,
    )

    assert WorkflowTicket.objects.get().status == "Closed"
