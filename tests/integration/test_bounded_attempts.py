"""A ticket whose allocation keeps failing is given up on after a bounded number of attempts, saying why."""

import os
import signal
import time

import pytest

from conftest import ticket_payload
from task.models import Task
from tests.integration.conftest import tts_calls, wait_until
from tickets.models import WorkflowTicket

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
    # Each attempt hangs on TTS and its pool process is killed there, as a
    # message that exhausts memory would be: late acknowledgement requeues it.
    fake_tts.state.configure({"delay": 30})
    worker = cluster.start("victim", ALLOCATION_MAX_ATTEMPTS=3)

    cluster.broker.send_ticket(ticket_payload("TX-POISON"))
    for attempt in range(1, 4):
        wait_until(lambda a=attempt: tts_calls(fake_tts) >= a, timeout=30, what=f"attempt {attempt}")
        for pid in worker.pool_pids():
            os.kill(pid, signal.SIGKILL)
    ticket = wait_until(lambda: _exhausted("TX-POISON"), timeout=30, what="the ticket to be given up on")
    wait_until(cluster.broker.idle, timeout=10, what="the message to be acknowledged")

    assert tts_calls(fake_tts) == 3
    assert worker.log().count("exited with 'signal 9 (SIGKILL)'") == 3
    assert not ticket.is_task_allocated
    assert ticket.allocation_failure_reason == (
        "Gave up after too many attempts: stopped after 3 attempts; "
        "last: no attempt finished (worker process lost or hard time limit)"
    )
    assert not Task.objects.exists()
