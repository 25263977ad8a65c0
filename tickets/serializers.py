import json
import math
import re
from collections.abc import Mapping

from django.conf import settings
from rest_framework import serializers
from rest_framework.settings import api_settings

from tickets.models import WorkflowTicket

# Where each field is read from, first key present wins. The upstream ticket
# service sends its row id as `id` (its own `original_ticket_id` means the
# ticket a reopened one came from), its number as `ticket_id`, and `subcategory`.
PAYLOAD_SOURCES = {
    "ticket_number": ("ticket_number", "ticket_id"),
    "original_ticket_id": ("id", "original_ticket_id"),
    "sub_category": ("sub_category", "subcategory"),
}
MAX_PAYLOAD_NODES = 10_000
BIGINT_MAX = 2**63 - 1
NON_FIELD_ERRORS = api_settings.NON_FIELD_ERRORS_KEY
_NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans instead of converting them."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An integer field that refuses strings, floats and booleans."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def _optional_text(max_length: int | None = None) -> StrictCharField:
    return StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=max_length, default=""
    )


def _error_key(key: object) -> str:
    """The top-level key to report an error under; a key that is not name-like may be data, never echoed."""
    if isinstance(key, str) and _NAME_LIKE.fullmatch(key):
        return key
    return NON_FIELD_ERRORS


def _payload_problem(payload: Mapping) -> tuple[str, str] | None:
    """Why the payload cannot be stored, as (top-level key or non_field_errors, reason), or None.

    Besides what PostgreSQL's JSON refuses, the intake limits (README:
    "Security: ticket intake limits"): MESSAGE_MAX_DEPTH levels of nesting (the
    ticket is level 1), TICKET_TEXT_MAX_BYTES per text value, MESSAGE_MAX_BYTES
    for the whole ticket as JSON. Messages from a broker were checked against
    the first and last while the worker decoded them; tasks run in-process were not.
    """
    max_depth, max_text = settings.MESSAGE_MAX_DEPTH, settings.TICKET_TEXT_MAX_BYTES
    # (value, nesting level, the top-level key it is under)
    stack: list[tuple[object, int, str]] = [(payload, 1, NON_FIELD_ERRORS)]
    nodes = 0
    while stack:
        node, depth, key = stack.pop()
        nodes += 1
        if nodes > MAX_PAYLOAD_NODES:
            return NON_FIELD_ERRORS, f"payload has more than {MAX_PAYLOAD_NODES} values"
        if isinstance(node, Mapping | list | tuple) and depth > max_depth:
            return NON_FIELD_ERRORS, f"payload nests deeper than {max_depth} levels"
        if isinstance(node, Mapping):
            for child_key, value in node.items():
                under = _error_key(child_key) if depth == 1 else key
                stack.append((child_key, depth + 1, under))
                stack.append((value, depth + 1, under))
        elif isinstance(node, list | tuple):
            stack.extend((child, depth + 1, key) for child in node)
        elif isinstance(node, str):
            if "\x00" in node:
                return NON_FIELD_ERRORS, "payload contains a NUL character"
            try:
                size = len(node.encode("utf-8"))
            except UnicodeEncodeError:
                return NON_FIELD_ERRORS, "payload contains text that is not valid Unicode"
            if size > max_text:
                return key, f"Text of {size} bytes is over the limit of {max_text} bytes (UTF-8)."
        elif isinstance(node, float) and not math.isfinite(node):
            return NON_FIELD_ERRORS, "payload contains a non-finite number"
    try:
        size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except (TypeError, ValueError):
        return NON_FIELD_ERRORS, "payload cannot be stored as JSON"
    if size > settings.MESSAGE_MAX_BYTES:
        return (
            NON_FIELD_ERRORS,
            f"ticket of {size} bytes is over the limit of {settings.MESSAGE_MAX_BYTES} bytes",
        )
    return None


class TicketPayloadSerializer(serializers.Serializer):
    """Validates a ticket message from a producer: the spec's field names or the upstream ticket shape."""

    ticket_number = StrictCharField(max_length=64)
    original_ticket_id = StrictIntegerField(
        required=False, allow_null=True, min_value=-BIGINT_MAX, max_value=BIGINT_MAX
    )
    subject = StrictCharField(max_length=255)
    description = _optional_text()
    department = _optional_text(150)
    category = _optional_text(150)
    sub_category = _optional_text(150)
    priority = _optional_text(50)
    status = _optional_text(50)

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {"non_field_errors": [f"Expected a JSON object, got {type(data).__name__}."]}
            )
        problem = _payload_problem(data)
        if problem:
            key, reason = problem
            raise serializers.ValidationError({key: [reason]})
        normalized = dict(data)
        used_keys = {}
        for field, keys in PAYLOAD_SOURCES.items():
            key = next((key for key in keys if key in data), None)
            if key is not None:
                normalized[field] = data[key]
                used_keys[field] = key
        try:
            validated = super().to_internal_value(normalized)
        except serializers.ValidationError as exc:
            # Report errors under the key the producer actually sent.
            raise serializers.ValidationError(
                {used_keys.get(key, key): value for key, value in exc.detail.items()}
            ) from exc
        # null means "not given" for the optional text fields.
        return {
            key: ("" if value is None and key != "original_ticket_id" else value)
            for key, value in validated.items()
        }


TICKET_SUMMARY_FIELDS = [
    "id",
    "ticket_number",
    "original_ticket_id",
    "subject",
    "description",
    "department",
    "category",
    "sub_category",
    "priority",
    "status",
    "is_task_allocated",
    "allocation_error",
    "allocation_error_detail",
    "allocation_failure_reason",
    "allocation_attempts",
    "last_allocation_attempt_at",
    "fetched_at",
    "created_at",
    "updated_at",
]


class WorkflowTicketSummarySerializer(serializers.ModelSerializer):
    """A ticket in a list: everything but `ticket_data`, the producer's whole message."""

    allocation_failure_reason = serializers.CharField(read_only=True)

    class Meta:
        model = WorkflowTicket
        fields = TICKET_SUMMARY_FIELDS
        read_only_fields = fields


class WorkflowTicketSerializer(WorkflowTicketSummarySerializer):
    """One ticket, with `ticket_data` as the producer sent it."""

    class Meta(WorkflowTicketSummarySerializer.Meta):
        fields = [*TICKET_SUMMARY_FIELDS, "ticket_data"]
        read_only_fields = fields
