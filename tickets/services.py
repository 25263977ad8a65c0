"""Tickets received from producers: storing them, allocating them, and recording the outcome.

The Celery tasks in tickets.tasks call `ticket_intake` (a message arrived)
and `ticket_allocate` (another try at a stored ticket); both return an
Outcome, which says what to report and whether to retry.
"""

import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tickets.models import RedeliveredMessage, WorkflowTicket
from tickets.serializers import TicketPayloadSerializer
from workflow_api import errors, metrics

logger = logging.getLogger(__name__)

CREATED = "created"
UPDATED = "updated"
AllocationError = WorkflowTicket.AllocationError
MAX_TICKET_ID = 2**63 - 1


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


def _message_key(message_id: object) -> str:
    """The key a message is counted under: its id, or a digest of an id too long (or odd) to store."""
    text = str(message_id)
    if len(text) <= 200:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def message_record_redelivery(*, message_id: str, task_name: str, ticket_number: str) -> RedeliveredMessage:
    """Count one more redelivery of a message; marks it dropped once the cap is reached."""
    message_id = _message_key(message_id)
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


# --- Allocation outcomes, as the Celery tasks report them -------------------------


@dataclass(frozen=True)
class Outcome:
    """What a ticket task reports; `retry_in` (seconds) when a transient failure has retries left."""

    result: dict
    retry_in: int | None = None
    ticket_id: int | None = None


def _received(ticket_id: int, ticket_number: str, action: str) -> dict:
    return {"status": "success", "ticket_id": ticket_id, "ticket_number": ticket_number, "action": action}


def _backoff(retries: int) -> int:
    return get_exponential_backoff_interval(
        factor=2, retries=retries, maximum=settings.ALLOCATION_RETRY_BACKOFF_MAX, full_jitter=True
    )


def ticket_intake(*, payload: object, message_id: str, redelivered: bool, retried: bool) -> Outcome:
    """A producer's message: store the ticket; a new ticket then gets its task in the same message.

    Idempotent per ticket number. On PostgreSQL a new ticket's first delivery
    asks TTS first, then stores the ticket and its task with one statement
    (task.services.task_create_with_new_ticket); a redelivery, an update, or
    another database stores the ticket first, then allocates it. `retried`:
    this message is a Celery retry after a database error, which may have
    stored the ticket before failing.
    """
    from task import services as task_services

    if redelivered:
        # The broker hands a message out again when its worker died or hung
        # (late acknowledgement). Bound that, or a poison message never leaves.
        message = message_record_redelivery(
            message_id=message_id,
            task_name="tickets.tasks.receive_ticket",
            ticket_number=plausible_number(payload) or "",
        )
        if message.dropped:
            logger.error(
                "Dropped ticket message %s (ticket number %r): redelivered %s times without finishing",
                message.message_id,
                message.ticket_number,
                message.redeliveries,
            )
            reason = f"Message redelivered {message.redeliveries} times without finishing; dropped."
            return Outcome({"status": "error", "errors": {"non_field_errors": [reason]}})
    try:
        fields = ticket_parse(payload=payload)
    except TicketInvalid as exc:
        logger.warning(
            "Rejected ticket message (ticket number %r): %s", plausible_number(payload), exc.errors
        )
        return Outcome({"status": "error", "errors": exc.errors})

    # A redelivery stores the ticket before anything else: the delivery before
    # it died, and this one may too. A first delivery is taken for a new
    # ticket (most are); its one statement refuses a number already stored.
    if not redelivered and task_services.can_create_with_new_ticket():
        outcome = _intake_new_ticket(fields, payload)
        if outcome is not None:
            return outcome
        # The number is stored already: carry on as an update.

    ticket, action = ticket_receive(payload=payload, fields=fields, allocating=True)
    logger.info("Ticket %s %s (id %s)", ticket.ticket_number, action, ticket.pk)
    received = _received(ticket.pk, ticket.ticket_number, action)
    if not _needs_allocation(ticket, action, redelivered=redelivered or retried):
        return Outcome(received)
    if action != CREATED:
        attempt = ticket_begin_allocation_attempt(ticket_id=ticket.pk)
        if attempt is None:
            return Outcome(received)  # allocated meanwhile
        if attempt > settings.ALLOCATION_MAX_ATTEMPTS:
            _give_up(ticket.pk, attempt - 1)
            return Outcome(received)
    allocated = _attempt_allocation(ticket.pk, retries=0, ticket=ticket, trigger="new_ticket")
    # Its retries go to create_task_for_ticket, as this attempt's first retry.
    return Outcome(received, retry_in=allocated.retry_in, ticket_id=ticket.pk)


def _needs_allocation(ticket: WorkflowTicket, action: str, *, redelivered: bool) -> bool:
    # Besides a new ticket: a message delivered again means the last delivery
    # died or failed, maybe mid-allocation; an update for a ticket whose
    # allocation never started means its first delivery died before the attempt.
    return action == CREATED or (
        not ticket.is_task_allocated and (redelivered or ticket.allocation_attempts == 0)
    )


def _intake_new_ticket(fields: dict, payload: object) -> Outcome | None:
    """A ticket not stored yet: ask TTS first, then store the ticket and its task with one commit.

    When allocating fails, the ticket is stored anyway, its first attempt
    counted, and the failure recorded or retried. None when the ticket number
    is stored already (an update, or another delivery came first).
    """
    from task import services as task_services

    started = time.perf_counter()
    try:
        stored = task_services.task_create_with_new_ticket(ticket_fields=fields, payload=payload)
    except Exception as exc:
        metrics.observe("allocation_seconds", time.perf_counter() - started)
        ticket, action = ticket_receive(payload=payload, fields=fields, allocating=True)
        if action != CREATED:
            return None  # an update of a stored ticket: its own path decides on allocating
        logger.info("Ticket %s %s (id %s)", ticket.ticket_number, action, ticket.pk)
        received = _received(ticket.pk, ticket.ticket_number, action)
        failed = _allocation_failed(ticket.pk, exc, retries=0)
        return Outcome(received, retry_in=failed.retry_in, ticket_id=ticket.pk)
    if stored is None:
        return None
    metrics.observe("allocation_seconds", time.perf_counter() - started)
    metrics.count("allocations_total", outcome="created")
    return Outcome(_received(stored[0], fields["ticket_number"], CREATED))


def valid_ticket_id(value: object) -> int | None:
    """`value` as a ticket id if it is one (a JSON integer from 1 to 2**63 - 1), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TICKET_ID:
        return None
    return value


def ticket_allocate(*, ticket_id: object, retries: int, new_attempt: bool) -> Outcome:
    """One try at giving a stored ticket its task (create_task_for_ticket); idempotent.

    `new_attempt`: a fresh message or a redelivery starts a new attempt, which
    is counted first; Celery retries (`retries` > 0) belong to the attempt
    that scheduled them.
    """
    checked = valid_ticket_id(ticket_id)
    if checked is None:
        logger.warning("create_task_for_ticket: refused a ticket id that is not a positive integer")
        return Outcome(
            {
                "status": "error",
                "error": "invalid",
                "message": "ticket_id must be an integer from 1 to 2**63-1",
            }
        )
    if new_attempt:
        attempt = ticket_begin_allocation_attempt(ticket_id=checked)
        if attempt is not None and attempt > settings.ALLOCATION_MAX_ATTEMPTS:
            return Outcome(_give_up(checked, attempt - 1))
    return _attempt_allocation(checked, retries=retries, trigger="retry")


def _attempt_allocation(
    ticket_id: int, *, retries: int, trigger: str, ticket: WorkflowTicket | None = None
) -> Outcome:
    """One try at allocating the ticket (retry number `retries`): its outcome."""
    from task import services as task_services

    started = time.perf_counter()
    try:
        task, created = task_services.task_create_for_ticket(
            ticket_id=ticket_id, ticket=ticket, trigger=trigger
        )
    except errors.NotFound as exc:
        metrics.count("allocations_total", outcome="not_found")
        logger.warning("create_task_for_ticket: %s", exc.message)
        return Outcome({"status": "error", "error": exc.code, "message": exc.message, "ticket_id": ticket_id})
    except Exception as exc:
        metrics.observe("allocation_seconds", time.perf_counter() - started)
        return _allocation_failed(ticket_id, exc, retries=retries)
    metrics.observe("allocation_seconds", time.perf_counter() - started)
    metrics.count("allocations_total", outcome="created" if created else "existing")
    return Outcome(
        {
            "status": "success",
            "ticket_id": ticket_id,
            "task_id": task.task_id,
            "action": "created" if created else "existing",
        }
    )


def _allocation_failed(ticket_id: int, exc: Exception, *, retries: int) -> Outcome:
    """Record why the ticket got no task; a transient failure with retries left asks for a retry."""
    from task import services as task_services
    from task import tts

    if isinstance(exc, task_services.AllocationFailed):
        outcome = Outcome(_final_failure(ticket_id, exc.reason, exc.message), ticket_id=ticket_id)
        if exc.reason == WorkflowTicket.WAITING:
            transaction.on_commit(lambda: task_services.task_wake_if_eligible_now(failed=exc))
        return outcome
    if isinstance(exc, tts.TTSBadResponse):
        return Outcome(
            _final_failure(ticket_id, AllocationError.TTS_BAD_RESPONSE, exc.message), ticket_id=ticket_id
        )
    if isinstance(exc, tts.TTSUnavailable | OperationalError | SoftTimeLimitExceeded | errors.Conflict):
        message = getattr(exc, "message", None) or _transient_message(exc)
        max_retries = settings.ALLOCATION_MAX_RETRIES
        if retries < max_retries:
            countdown = _backoff(retries)
            logger.warning(
                "Ticket %s: %s; retry %s/%s in %ss", ticket_id, message, retries + 1, max_retries, countdown
            )
            metrics.count("allocations_total", outcome="retry")
            result = {"status": "retry", "ticket_id": ticket_id, "message": message}
            return Outcome(result, retry_in=countdown, ticket_id=ticket_id)
        message = f"{message} (gave up after {max_retries} retries)"
        if ticket_allocation_attempts(ticket_id=ticket_id) >= settings.ALLOCATION_MAX_ATTEMPTS:
            # The sweeper will not try again: say that the ticket was given up on, and why.
            return Outcome(
                _give_up(ticket_id, settings.ALLOCATION_MAX_ATTEMPTS, last=message), ticket_id=ticket_id
            )
        return Outcome(
            _final_failure(ticket_id, AllocationError.TTS_UNAVAILABLE, message), ticket_id=ticket_id
        )
    # A defect, not an outcome: say so on the ticket, where operators look
    # (the type only: the message may quote data), and let Celery log it.
    metrics.count("allocations_total", outcome=AllocationError.INTERNAL_ERROR.value)
    ticket_record_allocation_failure(
        ticket_id=ticket_id, reason=AllocationError.INTERNAL_ERROR, detail=type(exc).__name__
    )
    raise exc


def plausible_number(ticket_data: object) -> str | None:
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
        ticket_record_allocation_failure(
            ticket_id=ticket_id, reason=AllocationError.ATTEMPTS_EXHAUSTED, detail=message
        )
    logger.error("Ticket %s not allocated: %s", ticket_id, message)
    metrics.count("allocations_total", outcome=AllocationError.ATTEMPTS_EXHAUSTED.value)
    return {
        "status": "error",
        "error": AllocationError.ATTEMPTS_EXHAUSTED.value,
        "message": message,
        "ticket_id": ticket_id,
    }


def _final_failure(ticket_id: int, reason: WorkflowTicket.AllocationError, message: str) -> dict:
    metrics.count("allocations_total", outcome=str(getattr(reason, "value", reason)))
    ticket_record_allocation_failure(ticket_id=ticket_id, reason=reason, detail=message)
    if reason == WorkflowTicket.WAITING:
        logger.info("Ticket %s waits for an available user: %s", ticket_id, message)
    else:
        logger.error("Ticket %s not allocated (%s): %s", ticket_id, reason.value, message)
    return {"status": "error", "error": reason.value, "message": message, "ticket_id": ticket_id}


def ticket_any_waiting() -> bool:
    """Whether any ticket waits for an available user (a partial index answers)."""
    return WorkflowTicket.objects.filter(
        is_task_allocated=False, allocation_error=WorkflowTicket.WAITING
    ).exists()


def ticket_allocate_waiting(*, batch: int = 200) -> dict:
    """Try again the tickets waiting for an available user, oldest first; no attempt is counted.

    Within a role, first in, first out: once a ticket of a role still waits,
    the younger tickets of that role are left waiting behind it, without
    asking TTS, and the other roles' tickets are looked at. A transient
    failure (TTS down) leaves the ticket waiting for the next wake-up.
    """
    from task import services as task_services
    from workflow.selectors import ticket_route

    blocked_routes: set[tuple[str, str, str]] = set()
    blocked_roles: set[str] = set()
    allocated = still = 0
    last = (None, 0)
    while True:
        page = WorkflowTicket.objects.filter(is_task_allocated=False, allocation_error=WorkflowTicket.WAITING)
        if last[0] is not None:
            page = page.filter(Q(created_at__gt=last[0]) | Q(created_at=last[0], id__gt=last[1]))
        tickets = list(
            page.order_by("created_at", "id").only(
                "ticket_number",
                "department",
                "category",
                "sub_category",
                "priority",
                "is_task_allocated",
                "created_at",
            )[:batch]
        )
        if not tickets:
            break
        last = (tickets[-1].created_at, tickets[-1].pk)
        for ticket in tickets:
            key = (ticket.department, ticket.category, ticket.sub_category)
            route = ticket_route(department=key[0], category=key[1], sub_category=key[2])
            role = route.step.role.name if route.step is not None else None
            if key in blocked_routes or role in blocked_roles:
                still += 1
                continue
            try:
                task_services.task_create_for_ticket(ticket_id=ticket.pk, ticket=ticket, trigger="retry")
                allocated += 1
            except task_services.AllocationFailed as exc:
                ticket_record_allocation_failure(ticket_id=ticket.pk, reason=exc.reason, detail=exc.message)
                if exc.reason == WorkflowTicket.WAITING:
                    still += 1
                    blocked_routes.add(key)
                    if role is not None:
                        blocked_roles.add(role)
            except (errors.DependencyUnavailable, errors.Conflict, OperationalError) as exc:
                # Still waiting; the next wake-up or sweep tries again.
                logger.warning(
                    "Waiting ticket %s: %s", ticket.pk, getattr(exc, "message", type(exc).__name__)
                )
                still += 1
                blocked_routes.add(key)
    if allocated or still:
        logger.info("Waiting tickets: %s allocated, %s still waiting", allocated, still)
    return {"status": "success", "allocated": allocated, "waiting": still}
