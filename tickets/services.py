"""Storing tickets received from producers and recording their allocation outcome."""

import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tickets.models import RedeliveredMessage, WorkflowTicket
from tickets.serializers import TicketPayloadSerializer

logger = logging.getLogger(__name__)

CREATED = "created"
UPDATED = "updated"


class TicketInvalid(Exception):
    """The message is not a ticket we can store; `errors` says why, field by field."""

    def __init__(self, errors: dict) -> None:
        super().__init__("invalid ticket message")
        # Plain JSON types: the errors travel back as a Celery result.
        self.errors = json.loads(json.dumps(errors))


def ticket_parse(*, payload: object) -> dict:
    """The ticket's model fields from a producer's message, ticket_number included; raises TicketInvalid."""
    serializer = TicketPayloadSerializer(data=payload)
    if not serializer.is_valid():
        raise TicketInvalid(serializer.errors)
    return dict(serializer.validated_data)


def ticket_exists(*, ticket_number: str) -> bool:
    # Asked once per message: a plain index lookup, without the ORM's query building.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {WorkflowTicket._meta.db_table} WHERE ticket_number = %s",  # noqa: S608
            [ticket_number],
        )
        return cursor.fetchone() is not None


def ticket_receive(
    *, payload: object, fields: dict | None = None, allocating: bool = False
) -> tuple[WorkflowTicket, str]:
    """Create or update the ticket a message describes; returns (ticket, 'created' | 'updated').

    Idempotent: a redelivered message finds its ticket by number and writes
    nothing if the content is unchanged; a version older than the stored one
    (by the producer's updated_at) is ignored. Allocation state is never reset here.
    `fields`: ticket_parse(payload), if the caller has it already. `allocating`:
    the caller starts allocating a new ticket right after this returns, so its
    first attempt is counted in the INSERT itself.
    """
    fields = dict(ticket_parse(payload=payload) if fields is None else fields)
    ticket_number = fields.pop("ticket_number")

    # Most messages bring a new ticket: try the INSERT first, without a read or
    # a lock. Outside a transaction it commits on its own (one statement);
    # inside a caller's transaction a savepoint keeps a duplicate from aborting it.
    try:
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
            ticket = WorkflowTicket.objects.create(
                ticket_number=ticket_number,
                ticket_data=payload,
                allocation_attempts=1 if allocating else 0,
                last_allocation_attempt_at=timezone.now() if allocating else None,
                **fields,
            )
        return ticket, CREATED
    except IntegrityError:
        pass  # the ticket exists: a redelivery or an update

    with transaction.atomic():
        ticket = WorkflowTicket.objects.select_for_update().get(ticket_number=ticket_number)
        incoming, stored = _producer_updated_at(payload), _producer_updated_at(ticket.ticket_data)
        if incoming is not None and stored is not None and incoming < stored:
            # Messages can arrive out of order (two workers, a redelivery): an
            # older version of the ticket must not overwrite a newer one.
            logger.info("Ticket %s: ignored a version older than the stored one", ticket_number)
            return ticket, UPDATED
        changed = [name for name, value in fields.items() if getattr(ticket, name) != value]
        for name in changed:
            setattr(ticket, name, fields[name])
        if ticket.ticket_data != payload:
            ticket.ticket_data = payload
            changed.append("ticket_data")
        if changed:
            ticket.save(update_fields=[*changed, "updated_at"])
    return ticket, UPDATED


def _producer_updated_at(payload: object) -> datetime | None:
    """When the producer last changed the ticket, if the message says so (updated_at or update_date)."""
    if not isinstance(payload, dict):
        return None
    for key in ("updated_at", "update_date"):
        value = payload.get(key)
        if not isinstance(value, str):
            continue
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)
    return None


def ticket_begin_allocation_attempt(*, ticket_id: int) -> int | None:
    """Count an allocation attempt for an unallocated ticket; returns the count, or None if allocated/missing.

    Committed before the attempt does any work: an attempt whose worker is
    killed still counts, so a message that kills its worker every time cannot
    be redelivered forever.
    """
    now = timezone.now()
    table = WorkflowTicket._meta.db_table
    # One statement: the ORM's update() cannot return the new count.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET allocation_attempts = allocation_attempts + 1, "
            "last_allocation_attempt_at = %s, updated_at = %s "
            "WHERE id = %s AND NOT is_task_allocated RETURNING allocation_attempts",
            [now, now, ticket_id],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def ticket_allocation_attempts(*, ticket_id: int) -> int:
    """How many allocation attempts the ticket has had (0 for an unknown ticket)."""
    return (
        WorkflowTicket.objects.filter(pk=ticket_id).values_list("allocation_attempts", flat=True).first() or 0
    )


def ticket_record_allocation_failure(
    *, ticket_id: int, reason: WorkflowTicket.AllocationError, detail: str
) -> None:
    """Record why the ticket got no task, so operators see it in admin and the API."""
    WorkflowTicket.objects.filter(pk=ticket_id, is_task_allocated=False).update(
        allocation_error=reason,
        allocation_error_detail=detail[:2000],
        last_allocation_attempt_at=timezone.now(),
        updated_at=timezone.now(),
    )


def _pending_allocation():
    stale_before = timezone.now() - timedelta(seconds=settings.ALLOCATION_STALE_SECONDS)
    # Transient failures, and tickets whose message was lost before or during
    # its attempt (no outcome recorded). The quiet period keeps the sweeper
    # from doubling a ticket whose message is still queued or retrying.
    retryable = Q(allocation_error__in=WorkflowTicket.TRANSIENT_ERRORS) | Q(
        allocation_error=WorkflowTicket.AllocationError.NONE
    )
    quiet = Q(last_allocation_attempt_at__lt=stale_before) | Q(
        last_allocation_attempt_at__isnull=True, created_at__lt=stale_before
    )
    return WorkflowTicket.objects.filter(
        retryable, quiet, is_task_allocated=False, allocation_attempts__lt=settings.ALLOCATION_MAX_ATTEMPTS
    )


def ticket_claim_pending_allocation(*, limit: int = 500) -> list[int]:
    """Unallocated tickets worth another try (transient failures under the attempt cap, lost messages),
    stamped so that the next sweep leaves them alone.

    Two sweepers running at once (two beat processes by mistake) split the
    tickets between them instead of enqueuing each twice.
    """
    with transaction.atomic():
        ids = list(
            _pending_allocation()
            .order_by("created_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        WorkflowTicket.objects.filter(pk__in=ids).update(last_allocation_attempt_at=timezone.now())
    return ids


def ticket_reset_allocation(*, ticket_ids: list[int]) -> list[int]:
    """Clear the recorded failure of unallocated tickets so they can be allocated afresh."""
    ids = list(
        WorkflowTicket.objects.filter(pk__in=ticket_ids, is_task_allocated=False).values_list("pk", flat=True)
    )
    WorkflowTicket.objects.filter(pk__in=ids).update(
        allocation_error=WorkflowTicket.AllocationError.NONE,
        allocation_error_detail="",
        allocation_attempts=0,
        updated_at=timezone.now(),
    )
    return ids


def message_record_redelivery(*, message_id: str, task_name: str, ticket_number: str) -> RedeliveredMessage:
    """Count one more redelivery of a message; marks it dropped once the cap is reached."""
    with transaction.atomic():
        RedeliveredMessage.objects.bulk_create(
            [RedeliveredMessage(message_id=message_id, task_name=task_name, ticket_number=ticket_number)],
            ignore_conflicts=True,
        )
        message = RedeliveredMessage.objects.select_for_update().get(message_id=message_id)
        message.redeliveries += 1
        message.dropped = message.redeliveries >= settings.TICKET_MESSAGE_MAX_REDELIVERIES
        message.save(update_fields=["redeliveries", "dropped", "last_redelivered_at"])
    return message
