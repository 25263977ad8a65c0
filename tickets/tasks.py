"""Celery entry points: a ticket arrives, is stored, and gets its task.

Producers enqueue `tickets.tasks.receive_ticket(ticket_data)`. Follow the
calls from here: tickets.services.ticket_intake stores the ticket and, for a
new one, asks task.services to create its task, where task.assignment decides
who gets it. These wrappers only map a service's outcome to Celery: a
transient failure becomes a retry, everything else is the task's result.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from task import services as task_services
from task import tasks as task_tasks
from task.services import apply_round_robin_assignment  # noqa: F401  (spec helper name)
from task.tts import fetch_users_for_role  # noqa: F401  (spec helper name)
from tickets import services
from workflow.selectors import find_matching_workflow  # noqa: F401  (spec helper name)
from workflow_api import metrics

logger = logging.getLogger(__name__)


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
    outcome = services.ticket_intake(
        payload=ticket_data,
        message_id=self.request.id,
        redelivered=bool((self.request.delivery_info or {}).get("redelivered")),
        retried=self.request.retries > 0,
    )
    if outcome.result.get("status") == "success":
        metrics.count("tickets_received_total")
    if outcome.retry_in is not None:
        # The allocation's retries run as create_task_for_ticket messages, as
        # this attempt's first retry.
        create_task_for_ticket.apply_async((outcome.ticket_id,), countdown=outcome.retry_in, retries=1)
    return outcome.result


@shared_task(name="tickets.tasks.create_task_for_ticket", bind=True)
def create_task_for_ticket(self, ticket_id: int) -> dict:
    """Give a ticket its task. Idempotent; retries only while TTS or the database is unreachable."""
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    outcome = services.ticket_allocate(
        ticket_id=ticket_id,
        retries=self.request.retries,
        # A fresh message or a redelivery after a lost worker starts a new attempt.
        new_attempt=self.request.retries == 0 or redelivered,
    )
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, max_retries=settings.ALLOCATION_MAX_RETRIES)
    return outcome.result


@shared_task(name="tickets.tasks.allocate_pending_tickets")
def allocate_pending_tickets() -> dict:
    """Periodic sweep: re-enqueue tickets whose allocation failed transiently or never ran,
    and wake tickets waiting for a user whose `until` may have passed."""
    ticket_ids = services.ticket_claim_pending_allocation()
    for ticket_id in ticket_ids:
        create_task_for_ticket.delay(ticket_id)
    if ticket_ids:
        logger.info("Re-enqueued allocation for %s ticket(s): %s", len(ticket_ids), ticket_ids)
    if services.ticket_any_waiting():
        allocate_waiting_tickets.delay()
    # Work still held by users who became unavailable (its reassignment was missed).
    for user_id in task_services.users_unavailable_with_work_not_started():
        task_tasks.reassign_from_unavailable_user.delay(user_id)
    return {"status": "success", "enqueued": len(ticket_ids)}


@shared_task(name="tickets.tasks.allocate_waiting_tickets")
def allocate_waiting_tickets() -> dict:
    """Allocate tickets waiting for an available user; enqueued when someone becomes available."""
    return services.ticket_allocate_waiting()
