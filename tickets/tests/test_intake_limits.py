"""Size and nesting limits on tickets (README: "Security: ticket intake limits").

Message bodies over the size or nesting limit never reach a task: the worker
refuses them while decoding (tests/integration/test_hostile_messages.py), and
so does Celery's in-process run, which round-trips arguments through JSON.
Ticket validation holds every ticket to the same limits, plus the text limit,
whoever calls it.
"""

import logging

import pytest
from kombu.exceptions import DecodeError

from conftest import ticket_payload
from task.models import Task
from tickets import services, tasks
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.django_db

KIB = 1024


def _receive(payload, capture):
    with capture(execute=True):
        return tasks.receive_ticket.delay(payload).get()


def _nested(levels: int) -> list:
    """A list nesting `levels` deep: _nested(1) == []."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _parse_errors(payload: dict) -> dict:
    with pytest.raises(services.TicketInvalid) as refused:
        services.ticket_parse(payload=payload)
    return refused.value.errors


def _assert_refused(result: dict, key: str, reason: str) -> None:
    assert result["status"] == "error"
    assert any(reason in message for message in result["errors"][key]), result["errors"]
    assert not WorkflowTicket.objects.exists()
    assert not Task.objects.exists()


def test_description_over_64_kib_is_refused_with_a_reason_logged_without_the_text(
    caplog, django_capture_on_commit_callbacks
):
    description = "Requester jane@example.org says: " + "x" * (64 * KIB)

    with caplog.at_level(logging.INFO):
        result = _receive(
            ticket_payload("TX-BIG-TEXT", description=description), django_capture_on_commit_callbacks
        )

    _assert_refused(result, "description", f"over the limit of {64 * KIB} bytes")
    assert "Rejected ticket message" in caplog.text
    assert "jane@example.org" not in caplog.text


def test_description_of_exactly_64_kib_is_stored(tts, workflow, django_capture_on_commit_callbacks):
    tts.role("IT Support Technician", [3, 6, 7])
    # Two bytes per character in UTF-8: the limit counts bytes, not characters.
    description = "é" * (32 * KIB)

    result = _receive(
        ticket_payload("TX-FULL-TEXT", description=description), django_capture_on_commit_callbacks
    )

    assert result["status"] == "success"
    assert WorkflowTicket.objects.get().description == description


def test_long_text_anywhere_in_the_ticket_is_refused_under_its_top_level_key(
    django_capture_on_commit_callbacks,
):
    payload = ticket_payload("TX-BIG-NOTE", employee={"notes": ["ok", "y" * (64 * KIB + 1)]})

    result = _receive(payload, django_capture_on_commit_callbacks)

    _assert_refused(result, "employee", "over the limit")


def test_ticket_over_1_mib_is_invalid_even_when_each_text_is_under_its_limit():
    attachments = [{"name": f"scan-{n}.txt", "content": "z" * (60 * KIB)} for n in range(18)]

    errors = _parse_errors(ticket_payload("TX-BIG", attachments=attachments))

    [reason] = errors["non_field_errors"]
    assert reason.startswith("ticket of ")
    assert reason.endswith(" bytes is over the limit of 1048576 bytes")


def test_ticket_nesting_deeper_than_32_levels_is_invalid():
    # The ticket is level 1: attachments nesting 32 levels make 33.
    errors = _parse_errors(ticket_payload("TX-DEEP", attachments=_nested(32)))

    assert errors == {"non_field_errors": ["payload nests deeper than 32 levels"]}


def test_ticket_nesting_exactly_32_levels_is_stored(django_capture_on_commit_callbacks):
    payload = ticket_payload("TX-DEEP-OK", attachments=_nested(31))

    result = _receive(payload, django_capture_on_commit_callbacks)

    assert result["status"] == "success"
    assert WorkflowTicket.objects.get().ticket_data["attachments"] == _nested(31)


def test_ticket_nesting_deeper_than_32_levels_never_reaches_the_task_in_process(
    django_capture_on_commit_callbacks,
):
    with pytest.raises(DecodeError, match="nest deeper than MESSAGE_MAX_DEPTH"):
        _receive(ticket_payload("TX-DEEP", attachments=_nested(520)), django_capture_on_commit_callbacks)

    assert not WorkflowTicket.objects.exists()


def test_limits_follow_their_settings(settings, django_capture_on_commit_callbacks):
    settings.TICKET_TEXT_MAX_BYTES = 2 * KIB
    settings.MESSAGE_MAX_DEPTH = 4

    too_long = _receive(
        ticket_payload("TX-A", description="d" * (2 * KIB + 1)), django_capture_on_commit_callbacks
    )

    _assert_refused(too_long, "description", f"over the limit of {2 * KIB} bytes")
    assert _parse_errors(ticket_payload("TX-B", attachments=_nested(4))) == {
        "non_field_errors": ["payload nests deeper than 4 levels"]
    }
