"""A ticket whose allocation keeps failing is given up on after a bounded number of attempts, saying why."""

import os
import signal
import time

import psycopg
import pytest
from django.db import connection, transaction

from conftest import ticket_payload
from task.models import Task
from tests.integration.conftest import tts_calls, wait_until
from tickets.models import RedeliveredMessage, WorkflowTicket

pytestmark = pytest.mark.integration

Reason = WorkflowTicket.AllocationError


def _exhausted(number: str):
    return WorkflowTicket.objects.filter(
        ticket_number=number, allocation_error=Reason.ATTEMPTS_EXHAUSTED
    ).first()


def test_allocation_failing_forever_stops_after_the_attempt_cap_with_its_reason(
    cluster, it_workflow, fake_tts
):
    fake_tts.state.configure({"mode": "error", "status": 503})
    cluster.start(
        "solo",
        beat=True,
        ALLOCATION_MAX_RETRIES=1,
        ALLOCATION_RETRY_BACKOFF_MAX=1,
        ALLOCATION_MAX_ATTEMPTS=3,
        ALLOCATION_SWEEP_INTERVAL=1,
        ALLOCATION_STALE_SECONDS=1,
    )

    cluster.broker.send_ticket(ticket_payload("TX-FOREVER"))
    ticket = wait_until(lambda: _exhausted("TX-FOREVER"), timeout=60, what="the ticket to be given up on")
    calls = tts_calls(fake_tts)
    time.sleep(4)  # several sweeps later, nobody tries again

    assert calls == 3 * 2  # three attempts of one try and one retry each
    assert tts_calls(fake_tts) == calls
    ticket.refresh_from_db()
    assert not ticket.is_task_allocated
    assert ticket.allocation_attempts == 3
    assert ticket.allocation_failure_reason.startswith(
        "Gave up after too many attempts: stopped after 3 attempts; last: TTS answered 503"
    )
    assert not Task.objects.exists()


def test_allocation_that_kills_its_worker_every_time_is_not_redelivered_forever(
    cluster, it_workflow, fake_tts
):
    # Each delivery hangs on TTS and its pool process is killed there, as a
    # message that exhausts memory would be: late acknowledgement requeues it.
    # The first delivery asks TTS before storing anything, so the ticket is
    # stored by the first redelivery: three counted attempts take four deliveries.
    fake_tts.state.configure({"delay": 30})
    worker = cluster.start("victim", ALLOCATION_MAX_ATTEMPTS=3)

    cluster.broker.send_ticket(ticket_payload("TX-POISON"))
    for delivery in range(1, 5):
        wait_until(lambda d=delivery: tts_calls(fake_tts) >= d, timeout=30, what=f"delivery {delivery}")
        for pid in worker.pool_pids():
            os.kill(pid, signal.SIGKILL)
    ticket = wait_until(lambda: _exhausted("TX-POISON"), timeout=30, what="the ticket to be given up on")
    wait_until(cluster.broker.idle, timeout=10, what="the message to be acknowledged")

    assert tts_calls(fake_tts) == 4
    assert worker.log().count("exited with 'signal 9 (SIGKILL)'") == 4
    assert not ticket.is_task_allocated
    assert ticket.allocation_failure_reason == (
        "Gave up after too many attempts: stopped after 3 attempts; "
        "last: no attempt finished (worker process lost or hard time limit)"
    )
    assert not Task.objects.exists()


def _lock_waiters() -> set[int]:
    """Backends of the test database blocked on a lock (seen from a connection of their own)."""
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"] or None, host=db["HOST"] or None, port=db["PORT"] or None
    ) as probe:
        rows = probe.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchall()
    return {pid for (pid,) in rows}


def test_ticket_message_that_kills_its_worker_every_time_is_dropped_after_the_redelivery_cap(cluster):
    # The same ticket, inserted by us and not committed: the worker's INSERT
    # waits on it, and its pool process is killed there each time.
    worker = cluster.start("victim", TICKET_MESSAGE_MAX_REDELIVERIES=3)
    blocked: set[int] = set()
    with transaction.atomic():
        WorkflowTicket.objects.create(ticket_number="TX-POISON-MSG", subject="held by the test")
        cluster.broker.send_ticket(ticket_payload("TX-POISON-MSG"))
        for delivery in range(1, 4):
            new = wait_until(
                lambda seen=frozenset(blocked): _lock_waiters() - seen,
                timeout=30,
                what=f"delivery {delivery} to block",
            )
            blocked |= new
            for pid in worker.pool_pids():
                os.kill(pid, signal.SIGKILL)
        message = wait_until(
            lambda: RedeliveredMessage.objects.filter(ticket_number="TX-POISON-MSG", dropped=True).first(),
            timeout=30,
            what="the message to be dropped",
        )
        # A backend blocked on a lock does not notice its client died: end the
        # killed deliveries' sessions, or their INSERTs would finish after ours.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [sorted(blocked)]
            )
        transaction.set_rollback(True)
    wait_until(cluster.broker.idle, timeout=10, what="the message to be acknowledged")

    assert len(blocked) == 3
    assert message.redeliveries == 3
    assert worker.log().count("exited with 'signal 9 (SIGKILL)'") == 3
    assert "Dropped ticket message" in worker.log()
    assert not WorkflowTicket.objects.filter(ticket_number="TX-POISON-MSG").exists()
