"""TTS failures: transient ones are retried with a capped exponential backoff, malformed answers are final."""

import json
import re
import subprocess
import sys
import time

import pytest

from conftest import ticket_payload
from task.models import Task
from tests.integration.conftest import REPO, free_port, tts_calls, wait_until
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.integration

Reason = WorkflowTicket.AllocationError
RETRIES = 4
BACKOFF_CAP = 3
RETRY_LINE = re.compile(r"retry (\d+)/(\d+) in (\d+)s")


def _ticket(number: str) -> WorkflowTicket | None:
    return WorkflowTicket.objects.filter(ticket_number=number).first()


def _failed_with(number: str, reason: str):
    ticket = _ticket(number)
    return ticket if ticket is not None and ticket.allocation_error == reason else None


@pytest.mark.parametrize("fault", ["http_503", "timeout", "connection_refused"])
def test_transient_tts_fault_is_retried_with_capped_exponential_backoff_then_recorded(
    cluster, it_workflow, fake_tts, fault
):
    env = {"ALLOCATION_MAX_RETRIES": RETRIES, "ALLOCATION_RETRY_BACKOFF_MAX": BACKOFF_CAP}
    if fault == "http_503":
        fake_tts.state.configure({"mode": "error", "status": 503})
    elif fault == "timeout":
        fake_tts.state.configure({"delay": 1.5})
        env["TTS_READ_TIMEOUT"] = 0.3
    else:
        env["TTS_SERVICE_URL"] = f"http://127.0.0.1:{free_port()}"
    worker = cluster.start("solo", **env)

    cluster.broker.send_ticket(ticket_payload("TX-FAULT"))
    ticket = wait_until(
        lambda: _failed_with("TX-FAULT", Reason.TTS_UNAVAILABLE),
        timeout=60,
        what="the failure to be recorded",
    )

    assert not ticket.is_task_allocated
    assert not Task.objects.exists()
    assert f"gave up after {RETRIES} retries" in ticket.allocation_failure_reason
    assert ticket.allocation_attempts == 1
    retries = [tuple(map(int, match)) for match in RETRY_LINE.findall(worker.log())]
    assert [(number, total) for number, total, _delay in retries] == [(n, RETRIES) for n in range(1, 5)]
    # Full-jitter exponential backoff: retry n waits at most 2 * 2**(n-1) seconds, never above the cap.
    for number, _total, delay in retries:
        assert 0 <= delay <= min(BACKOFF_CAP, 2 * 2 ** (number - 1))
    if fault != "connection_refused":
        assert tts_calls(fake_tts) == RETRIES + 1
        times = fake_tts.call_times
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert max(gaps) < BACKOFF_CAP + 4  # the cap, plus the read timeout and a busy worker's reaction time


MALFORMED = {
    "html": "<html><body>502 Bad Gateway</body></html>",
    "object": json.dumps({"users": [3, 6, 7]}),
    "strings": json.dumps(["3", "6", "7"]),
    "negative_ids": json.dumps([3, -6, 7]),
    "absurdly_long_list": json.dumps(list(range(1, 5002))),
}


def test_malformed_tts_answers_are_final_recorded_failures_without_retries(cluster, it_workflow, fake_tts):
    # The sweeper runs every second: it must leave these tickets alone too.
    cluster.start("solo", beat=True, ALLOCATION_SWEEP_INTERVAL=1, ALLOCATION_STALE_SECONDS=1)

    for name, body in MALFORMED.items():
        fake_tts.state.configure({"mode": "malformed", "body": body})
        cluster.broker.send_ticket(ticket_payload(f"TX-BAD-{name}"))
        wait_until(
            lambda n=name: _failed_with(f"TX-BAD-{n}", Reason.TTS_BAD_RESPONSE),
            timeout=30,
            what=f"the {name} answer to be recorded",
        )
    calls = tts_calls(fake_tts)
    time.sleep(4)  # several sweeps

    assert calls == len(MALFORMED)
    assert tts_calls(fake_tts) == calls
    assert not Task.objects.exists()
    for ticket in WorkflowTicket.objects.all():
        assert not ticket.is_task_allocated
        assert ticket.allocation_error == Reason.TTS_BAD_RESPONSE
        assert ticket.allocation_failure_reason.startswith("TTS service answered malformed data:")
        assert ticket.allocation_attempts == 1
    assert "retry 1/" not in cluster.logs()


def test_tickets_sent_while_tts_is_down_get_exactly_one_task_each_once_it_recovers(
    cluster, it_workflow, fake_tts
):
    fake_tts.state.configure({"mode": "error", "status": 503})
    cluster.start(
        "solo",
        concurrency=2,
        beat=True,
        ALLOCATION_MAX_RETRIES=2,
        ALLOCATION_RETRY_BACKOFF_MAX=1,
        ALLOCATION_SWEEP_INTERVAL=1,
        ALLOCATION_STALE_SECONDS=2,
        ALLOCATION_MAX_ATTEMPTS=100,
    )
    numbers = [f"TX-DOWN-{n}" for n in range(20)]
    for number in numbers:
        cluster.broker.send_ticket(ticket_payload(number))

    # Retries run out while TTS is down: every ticket waits, unallocated, with its reason.
    wait_until(
        lambda: WorkflowTicket.objects.filter(allocation_error=Reason.TTS_UNAVAILABLE).count() == 20,
        timeout=60,
        what="all 20 tickets to record TTS as unavailable",
    )
    assert not Task.objects.exists()
    assert all(
        ticket.allocation_failure_reason.startswith("TTS service unavailable: TTS answered 503")
        for ticket in WorkflowTicket.objects.all()
    )

    fake_tts.state.configure({"mode": "ok"})
    wait_until(
        lambda: WorkflowTicket.objects.filter(is_task_allocated=True).count() == 20 and cluster.broker.idle(),
        timeout=60,
        what="the sweeper to allocate every ticket",
    )
    time.sleep(3)  # more sweeps: nothing left for them to do

    assert Task.objects.count() == 20
    for ticket in WorkflowTicket.objects.all():
        assert ticket.tasks.count() == 1
        assert ticket.allocation_error == ""
    assert "Re-enqueued allocation for" in cluster.logs()


def test_the_sweeper_command_hands_waiting_tickets_to_the_workers_once_tts_is_back(
    cluster, it_workflow, fake_tts
):
    fake_tts.state.configure({"mode": "error", "status": 502})
    worker_env = {"ALLOCATION_MAX_RETRIES": 0, "ALLOCATION_STALE_SECONDS": 0}
    cluster.start("solo", **worker_env)
    cluster.broker.send_ticket(ticket_payload("TX-MANUAL"))
    wait_until(lambda: _failed_with("TX-MANUAL", Reason.TTS_UNAVAILABLE), timeout=30, what="the failure")
    fake_tts.state.configure({"mode": "ok"})

    command = subprocess.run(
        [sys.executable, "manage.py", "allocate_pending_tickets"],
        cwd=REPO,
        env={**cluster.env, **{name: str(value) for name, value in worker_env.items()}},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert command.returncode == 0, command.stderr
    assert "Enqueued allocation for 1 ticket(s)." in command.stdout
    ticket = wait_until(
        lambda: WorkflowTicket.objects.filter(ticket_number="TX-MANUAL", is_task_allocated=True).first(),
        timeout=30,
        what="the worker to allocate the ticket",
    )
    assert ticket.tasks.count() == 1
    assert ticket.allocation_error == ""
