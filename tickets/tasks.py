"""Celery entry points: a ticket arrives, is stored, and gets its task.

Producers enqueue `tickets.tasks.receive_ticket(ticket_data)`. Follow the
calls from here: tickets.services.ticket_receive stores the ticket, then
task.services.task_create_for_ticket finds the workflow, asks TTS for the
role's users and creates the task.

A new ticket is allocated in the message that brought it: a second message
per ticket would cost more than the allocation itself. On PostgreSQL its first
delivery asks TTS first, then stores the ticket and its task in one statement
(task.services.task_create_with_new_ticket); a redelivery, an update, or
another database stores the ticket first, then allocates it.
`create_task_for_ticket` carries the retries of a failed attempt, later
attempts (the sweeper, admin) and the REST trigger.
"""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import OperationalError, connection

from task import services as task_services
from task import tts
from task.services import apply_round_robin_assignment  # noqa: F401  (spec helper name)
from task.tts import fetch_users_for_role  # noqa: F401  (spec helper name)
from tickets import services
from tickets.models import WorkflowTicket
from workflow.selectors import find_matching_workflow  # noqa: F401  (spec helper name)
from workflow_api import errors

logger = logging.getLogger(__name__)

AllocationError = WorkflowTicket.AllocationError


def _backoff(retries: int) -> int:
    return get_exponential_backoff_interval(
        factor=2, retries=retries, maximum=settings.ALLOCATION_RETRY_BACKOFF_MAX, full_jitter=True
    )


@shared_task(
    name="tickets.tasks.receive_ticket",
    bind=True,
    autoretry_for=(OperationalError,),
    # A message that never reached the database cannot be recovered by the
    # sweeper: ride out a database outage of half an hour or so (full-jitter
    # backoff, each wait at most the allocation backoff cap, which the broker's
    # visibility timeout is sized for).
    max_retries=20,
    retry_backoff=True,
    retry_backoff_max=settings.ALLOCATION_RETRY_BACKOFF_MAX,
)
def receive_ticket(self, ticket_data: object) -> dict:
    """Store a producer's ticket; a new ticket then gets its task. Idempotent per ticket number."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    if redelivered:
        # The broker hands a message out again when its worker died or hung
        # (late acknowledgement). Bound that, or a poison message never leaves.
        message = services.message_record_redelivery(
            message_id=self.request.id,
            task_name=self.name,
            ticket_number=_plausible_number(ticket_data) or "",
        )
        if message.dropped:
            logger.error(
                "Dropped ticket message %s (ticket number %r): redelivered %s times without finishing",
                message.message_id,
                message.ticket_number,
                message.redeliveries,
            )
            return {
                "status": "error",
                "errors": {
                    "non_field_errors": [
                        f"Message redelivered {message.redeliveries} times without finishing; dropped."
                    ]
                },
            }
    try:
        fields = services.ticket_parse(payload=ticket_data)
    except services.TicketInvalid as exc:
        logger.warning(
            "Rejected ticket message (ticket number %r): %s", _plausible_number(ticket_data), exc.errors
        )
        return {"status": "error", "errors": exc.errors}

    if connection.in_atomic_block:
        # Run eagerly inside a caller's transaction: the ticket commits with
        # the caller, so its allocation is enqueued for that commit.
        ticket, action = services.ticket_receive(payload=ticket_data, fields=fields)
        logger.info("Ticket %s %s (id %s)", ticket.ticket_number, action, ticket.pk)
        if _needs_allocation(ticket, action, redelivered=redelivered):
            create_task_for_ticket.delay_on_commit(ticket.pk)
        return _received(ticket.pk, ticket.ticket_number, action)

    # A redelivery stores the ticket before anything else: the delivery before
    # it died, and this one may too.
    if (
        not redelivered
        and task_services.can_create_with_new_ticket()
        and not services.ticket_exists(ticket_number=fields["ticket_number"])
    ):
        received = _receive_new_ticket(fields, ticket_data)
        if received is not None:
            return received
        # Another delivery stored this number first: carry on as an update.

    ticket, action = services.ticket_receive(payload=ticket_data, fields=fields, allocating=True)
    logger.info("Ticket %s %s (id %s)", ticket.ticket_number, action, ticket.pk)
    # A Celery retry of this message (a database error) may have stored the ticket before failing.
    if _needs_allocation(ticket, action, redelivered=redelivered or self.request.retries > 0):
        _allocate_after_receiving(ticket, attempt_counted=action == services.CREATED)
    return _received(ticket.pk, ticket.ticket_number, action)


def _received(ticket_id: int, ticket_number: str, action: str) -> dict:
    return {"status": "success", "ticket_id": ticket_id, "ticket_number": ticket_number, "action": action}


def _needs_allocation(ticket: WorkflowTicket, action: str, *, redelivered: bool) -> bool:
    # Besides a new ticket: a message delivered again means the last delivery
    # died or failed, maybe mid-allocation; an update for a ticket whose
    # allocation never started means its first delivery died before the attempt.
    return action == services.CREATED or (
        not ticket.is_task_allocated and (redelivered or ticket.allocation_attempts == 0)
    )


def _receive_new_ticket(fields: dict, ticket_data: object) -> dict | None:
    """A ticket not stored yet: ask TTS first, then store the ticket and its task with one commit.

    When allocating fails, the ticket is stored anyway, its first attempt
    counted, and the failure recorded or retried. None when another delivery
    stored the ticket number first.
    """
    try:
        stored = task_services.task_create_with_new_ticket(ticket_fields=fields, payload=ticket_data)
    except Exception as exc:
        ticket, action = services.ticket_receive(payload=ticket_data, fields=fields, allocating=True)
        logger.info("Ticket %s %s (id %s)", ticket.ticket_number, action, ticket.pk)
        if action != services.CREATED:
            # Stored meanwhile by another delivery, which allocates it.
            logger.warning(
                "Ticket %s: allocating in this delivery failed (%s)",
                ticket.ticket_number,
                getattr(exc, "message", type(exc).__name__),
            )
            return _received(ticket.pk, ticket.ticket_number, action)
        try:
            _allocation_failed(ticket.pk, exc, retries=0)
        except _RetryLater as later:
            create_task_for_ticket.apply_async((ticket.pk,), countdown=later.countdown, retries=1)
        return _received(ticket.pk, ticket.ticket_number, action)
    if stored is None:
        return None
    return _received(stored[0], fields["ticket_number"], services.CREATED)


def _allocate_after_receiving(ticket: WorkflowTicket, *, attempt_counted: bool) -> None:
    """Allocate the ticket in the message that stored it; its retries go to create_task_for_ticket."""
    if not attempt_counted:
        attempt = services.ticket_begin_allocation_attempt(ticket_id=ticket.pk)
        if attempt is None:
            return  # allocated meanwhile
        if attempt > settings.ALLOCATION_MAX_ATTEMPTS:
            _give_up(ticket.pk, attempt - 1)
            return
    try:
        _attempt_allocation(ticket.pk, retries=0, ticket=ticket)
    except _RetryLater as later:
        # Carry on as this attempt's first retry, in a message of its own.
        create_task_for_ticket.apply_async((ticket.pk,), countdown=later.countdown, retries=1)


@shared_task(name="tickets.tasks.create_task_for_ticket", bind=True)
def create_task_for_ticket(self, ticket_id: int) -> dict:
    """Give a ticket its task. Idempotent; retries only while TTS or the database is unreachable."""
    delivery_info = self.request.delivery_info or {}
    # Celery retries belong to the attempt that scheduled them; a fresh
    # message or a redelivery after a lost worker starts a new one.
    if self.request.retries == 0 or delivery_info.get("redelivered"):
        attempt = services.ticket_begin_allocation_attempt(ticket_id=ticket_id)
        if attempt is not None and attempt > settings.ALLOCATION_MAX_ATTEMPTS:
            return _give_up(ticket_id, attempt - 1)
    try:
        return _attempt_allocation(ticket_id, retries=self.request.retries)
    except _RetryLater as later:
        raise self.retry(
            exc=later.__cause__, countdown=later.countdown, max_retries=settings.ALLOCATION_MAX_RETRIES
        ) from later.__cause__


class _RetryLater(Exception):
    """The allocation failed transiently and has retries left: try again in `countdown` seconds."""

    def __init__(self, countdown: int) -> None:
        super().__init__(countdown)
        self.countdown = countdown


def _attempt_allocation(ticket_id: int, *, retries: int, ticket: WorkflowTicket | None = None) -> dict:
    """One try at allocating the ticket (retry number `retries`): its outcome, or _RetryLater raised."""
    try:
        task, created = task_services.task_create_for_ticket(ticket_id=ticket_id, ticket=ticket)
    except errors.NotFound as exc:
        logger.warning("create_task_for_ticket: %s", exc.message)
        return {"status": "error", "error": exc.code, "message": exc.message, "ticket_id": ticket_id}
    except Exception as exc:
        return _allocation_failed(ticket_id, exc, retries=retries)
    return {
        "status": "success",
        "ticket_id": ticket_id,
        "task_id": task.task_id,
        "action": "created" if created else "existing",
    }


def _allocation_failed(ticket_id: int, exc: Exception, *, retries: int) -> dict:
    """Record why the ticket got no task; raises _RetryLater while a transient failure has retries left."""
    if isinstance(exc, task_services.AllocationFailed):
        return _final_failure(ticket_id, exc.reason, exc.message)
    if isinstance(exc, tts.TTSBadResponse):
        return _final_failure(ticket_id, AllocationError.TTS_BAD_RESPONSE, exc.message)
    if isinstance(exc, tts.TTSUnavailable | OperationalError | SoftTimeLimitExceeded):
        message = getattr(exc, "message", None) or _transient_message(exc)
        max_retries = settings.ALLOCATION_MAX_RETRIES
        if retries < max_retries:
            countdown = _backoff(retries)
            logger.warning(
                "Ticket %s: %s; retry %s/%s in %ss", ticket_id, message, retries + 1, max_retries, countdown
            )
            raise _RetryLater(countdown) from exc
        message = f"{message} (gave up after {max_retries} retries)"
        if services.ticket_allocation_attempts(ticket_id=ticket_id) >= settings.ALLOCATION_MAX_ATTEMPTS:
            # The sweeper will not try again: say that the ticket was given up on, and why.
            return _give_up(ticket_id, settings.ALLOCATION_MAX_ATTEMPTS, last=message)
        return _final_failure(ticket_id, AllocationError.TTS_UNAVAILABLE, message)
    # A defect, not an outcome: say so on the ticket, where operators look
    # (the type only: the message may quote data), and let Celery log it.
    services.ticket_record_allocation_failure(
        ticket_id=ticket_id, reason=AllocationError.INTERNAL_ERROR, detail=type(exc).__name__
    )
    raise exc


def _plausible_number(ticket_data: object) -> str | None:
    """The message's ticket number if it looks like one; a malformed one may be any
    part of the message, including the requester's personal data, and is not logged."""
    number = ticket_data.get("ticket_id") if isinstance(ticket_data, dict) else None
    if not isinstance(number, str | int) or isinstance(number, bool) or len(str(number)) > 64:
        return None
    return str(number)


def _transient_message(exc: Exception) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return "allocation exceeded the soft time limit"
    return f"database unavailable: {exc}"


def _give_up(ticket_id: int, attempts: int, last: str = "") -> dict:
    reason, detail = (
        WorkflowTicket.objects.filter(pk=ticket_id)
        .values_list("allocation_error", "allocation_error_detail")
        .first()
    ) or ("", "")
    if reason == AllocationError.ATTEMPTS_EXHAUSTED:
        message = detail
    else:
        # An attempt whose worker was killed records nothing; say so rather than leave the reason empty.
        last = last or detail or "no attempt finished (worker process lost or hard time limit)"
        message = f"stopped after {attempts} attempts; last: {last}"
        services.ticket_record_allocation_failure(
            ticket_id=ticket_id, reason=AllocationError.ATTEMPTS_EXHAUSTED, detail=message
        )
    logger.error("Ticket %s not allocated: %s", ticket_id, message)
    return {
        "status": "error",
        "error": AllocationError.ATTEMPTS_EXHAUSTED.value,
        "message": message,
        "ticket_id": ticket_id,
    }


def _final_failure(ticket_id: int, reason: WorkflowTicket.AllocationError, message: str) -> dict:
    services.ticket_record_allocation_failure(ticket_id=ticket_id, reason=reason, detail=message)
    logger.error("Ticket %s not allocated (%s): %s", ticket_id, reason.value, message)
    return {"status": "error", "error": reason.value, "message": message, "ticket_id": ticket_id}


@shared_task(name="tickets.tasks.allocate_pending_tickets")
def allocate_pending_tickets() -> dict:
    """Periodic sweep: re-enqueue tickets whose allocation failed transiently or never ran."""
    ticket_ids = services.ticket_claim_pending_allocation()
    for ticket_id in ticket_ids:
        create_task_for_ticket.delay(ticket_id)
    if ticket_ids:
        logger.info("Re-enqueued allocation for %s ticket(s): %s", len(ticket_ids), ticket_ids)
    return {"status": "success", "enqueued": len(ticket_ids)}
