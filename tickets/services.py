"""Storing tickets received from producers and recording their allocation outcome."""

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from tickets.models import WorkflowTicket
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


def ticket_receive(*, payload: object) -> tuple[WorkflowTicket, str]:
    """Create or update the ticket a message describes; returns (ticket, 'created' | 'updated').

    Idempotent: a redelivered message finds its ticket by number and writes
    nothing if the content is unchanged. Allocation state is never reset here.
    """
    serializer = TicketPayloadSerializer(data=payload)
    if not serializer.is_valid():
        raise TicketInvalid(serializer.errors)
    fields = dict(serializer.validated_data)
    ticket_number = fields.pop("ticket_number")

    with transaction.atomic():
        ticket = WorkflowTicket.objects.select_for_update().filter(ticket_number=ticket_number).first()
        if ticket is None:
            try:
                with transaction.atomic():
                    ticket = WorkflowTicket.objects.create(
                        ticket_number=ticket_number, ticket_data=payload, **fields
                    )
                return ticket, CREATED
            except IntegrityError:
                # Another worker stored the same ticket between our read and insert.
                ticket = WorkflowTicket.objects.select_for_update().get(ticket_number=ticket_number)
        changed = [name for name, value in fields.items() if getattr(ticket, name) != value]
        for name in changed:
            setattr(ticket, name, fields[name])
        if ticket.ticket_data != payload:
            ticket.ticket_data = payload
            changed.append("ticket_data")
        if changed:
            ticket.save(update_fields=[*changed, "updated_at"])
    return ticket, UPDATED


def ticket_record_allocation_failure(
    *, ticket_id: int, reason: WorkflowTicket.AllocationError, detail: str
) -> None:
    """Record why the ticket got no task, so operators see it in admin and the API."""
    WorkflowTicket.objects.filter(pk=ticket_id, is_task_allocated=False).update(
        allocation_error=reason,
        allocation_error_detail=detail[:2000],
        allocation_attempts=F("allocation_attempts") + 1,
        last_allocation_attempt_at=timezone.now(),
        updated_at=timezone.now(),
    )


def ticket_ids_pending_allocation(*, limit: int = 500) -> list[int]:
    """Unallocated tickets worth another try: transient failures under the attempt cap, and lost messages."""
    stale_before = timezone.now() - timedelta(seconds=settings.ALLOCATION_STALE_SECONDS)
    transient = Q(
        allocation_error__in=WorkflowTicket.TRANSIENT_ERRORS,
        allocation_attempts__lt=settings.ALLOCATION_MAX_ATTEMPTS,
    )
    never_ran = Q(allocation_error=WorkflowTicket.AllocationError.NONE, created_at__lt=stale_before)
    return list(
        WorkflowTicket.objects.filter(is_task_allocated=False)
        .filter(transient | never_ran)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


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
