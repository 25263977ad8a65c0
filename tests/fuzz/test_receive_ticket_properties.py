"""Whatever JSON a producer sends, receive_ticket stores a ticket or reports a validation error.

Never an escaped exception, never rows left behind by a rejected message.
"""

import json
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from task.models import Task
from tickets import tasks
from tickets.models import WorkflowTicket

# Any text a JSON decoder can produce, lone surrogates and NUL included.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)
# Mostly ticket-shaped messages, so generated values reach every field's validation.
TICKET_KEYS = [
    "ticket_id",
    "ticket_number",
    "id",
    "original_ticket_id",
    "subject",
    "description",
    "department",
    "category",
    "sub_category",
    "subcategory",
    "priority",
    "status",
    "employee",
]
plausible_text = st.text(max_size=300) | any_text
ticket_like = st.fixed_dictionaries(
    {"ticket_id": plausible_text, "subject": plausible_text},
    optional={
        key: json_values | plausible_text for key in TICKET_KEYS if key not in ("ticket_id", "subject")
    },
)
messages = json_values | ticket_like | st.dictionaries(any_text, json_values, max_size=6)

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


def _as_json_numbers(value: object) -> object:
    """`value` with its numbers read as JSON means them (decimal), as PostgreSQL's jsonb keeps them.

    A float's shortest repr, e.g. 3.146988263717035e+16, is stored as that
    decimal number and read back as the integer 31469882637170350.
    """
    return json.loads(json.dumps(value), parse_float=Decimal)


def _rows() -> tuple[int, int]:
    return WorkflowTicket.objects.count(), Task.objects.count()


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(payload=messages)
def test_any_json_is_a_stored_ticket_or_a_validation_error(payload):
    # One savepoint per example: each message meets the same (empty) database.
    with transaction.atomic():
        before = _rows()
        result = tasks.receive_ticket(payload)
        after = _rows()

        json.dumps(result)  # the result travels back through Celery as JSON
        if result["status"] == "success":
            ticket = WorkflowTicket.objects.get(pk=result["ticket_id"])
            assert result["action"] == "created"
            assert after == (before[0] + 1, before[1])
            assert ticket.ticket_number == result["ticket_number"]
            assert _as_json_numbers(ticket.ticket_data) == _as_json_numbers(payload)
        else:
            assert result["status"] == "error"
            assert isinstance(result["errors"], dict) and result["errors"]
            assert after == before
        transaction.set_rollback(True)


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(payload=ticket_like)
def test_a_redelivered_message_changes_nothing(payload):
    with transaction.atomic():
        first = tasks.receive_ticket(payload)
        rows = _rows()
        second = tasks.receive_ticket(payload)

        assert _rows() == rows
        if first["status"] == "success":
            assert second["status"] == "success"
            assert (second["ticket_id"], second["action"]) == (first["ticket_id"], "updated")
        else:
            assert second == first
        transaction.set_rollback(True)
