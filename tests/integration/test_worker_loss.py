"""Workers killed mid-task (SIGKILL, as the OOM killer does): no ticket lost, none given two tasks."""

import os
import signal

import pytest

from conftest import ticket_payload
from task.models import Task
from tests.integration.conftest import tts_calls, wait_until
from tickets.models import RedeliveredMessage, WorkflowTicket

pytestmark = pytest.mark.integration

# The whole-worker test makes Redis redeliver unacknowledged messages after
# 10 s; time limits and retry delays must stay below that (settings check it).
SHORT_VISIBILITY = {
    "CELERY_VISIBILITY_TIMEOUT": 10,
    "CELERY_TASK_SOFT_TIME_LIMIT": 5,
    "CELERY_TASK_TIME_LIMIT": 8,
    "ALLOCATION_RETRY_BACKOFF_MAX": 1,
}


def _all_allocated(cluster, count: int) -> bool:
    return WorkflowTicket.objects.filter(is_task_allocated=True).count() == count and cluster.broker.idle()


def _assert_one_task_per_ticket(numbers: list[str]) -> None:
    assert sorted(WorkflowTicket.objects.values_list("ticket_number", flat=True)) == sorted(numbers)
    assert Task.objects.count() == len(numbers)
    for ticket in WorkflowTicket.objects.all():
        assert ticket.is_task_allocated
        assert ticket.tasks.count() == 1


def test_pool_processes_killed_mid_task_lose_no_ticket_and_duplicate_none(cluster, it_workflow, fake_tts):
    fake_tts.state.configure({"delay": 1.5})  # slow TTS: kills land while a task waits on it
    worker = cluster.start("victim", concurrency=2)
    numbers = [f"TX-OOM-{n}" for n in range(10)]
    for number in numbers:
        cluster.broker.send_ticket(ticket_payload(number))

    for kill in range(3):
        wait_until(lambda k=kill: tts_calls(fake_tts) > 2 * k, timeout=30, what="a task waiting on TTS")
        pool = wait_until(worker.pool_pids, timeout=10, what="pool processes")
        for pid in pool:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda p=pool: set(worker.pool_pids()).isdisjoint(p), timeout=15, what="a new pool")
    fake_tts.state.configure({"delay": 0})

    wait_until(lambda: _all_allocated(cluster, len(numbers)), timeout=90, what="all tickets to be allocated")
    _assert_one_task_per_ticket(numbers)
    log = worker.log()
    assert "signal 9 (SIGKILL)" in log
    assert "WorkerLostError" in log
    # Killed deliveries were delivered again and finished on a fresh pool process.
    assert RedeliveredMessage.objects.filter(ticket_number__in=numbers).exists()
    assert worker.process.poll() is None  # the same worker carried on with fresh pool processes


def test_whole_worker_killed_mid_task_then_replaced_loses_no_ticket_and_duplicates_none(
    cluster, it_workflow, fake_tts
):
    fake_tts.state.configure({"delay": 2})
    victim = cluster.start("victim", concurrency=2, **SHORT_VISIBILITY)
    numbers = [f"TX-CRASH-{n}" for n in range(8)]
    for number in numbers:
        cluster.broker.send_ticket(ticket_payload(number))
    wait_until(lambda: tts_calls(fake_tts) >= 2, timeout=30, what="two tasks waiting on TTS")

    victim.kill()
    allocated_at_kill = WorkflowTicket.objects.filter(is_task_allocated=True).count()
    fake_tts.state.configure({"delay": 0})
    replacement = cluster.start("replacement", concurrency=2, **SHORT_VISIBILITY)

    # The messages the dead worker held come back once the visibility timeout has passed.
    wait_until(lambda: _all_allocated(cluster, len(numbers)), timeout=90, what="all tickets to be allocated")
    _assert_one_task_per_ticket(numbers)
    assert allocated_at_kill < len(numbers)
    # The deliveries cut short by the kill ran again on the replacement.
    assert RedeliveredMessage.objects.filter(ticket_number__in=numbers).count() >= 2
    assert "Task " in replacement.log()
