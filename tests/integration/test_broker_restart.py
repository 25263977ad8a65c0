"""Redis restarting under running workers: they reconnect, and every stored ticket still gets one task."""

import contextlib
import subprocess
import time
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings

from conftest import ticket_payload
from task.models import Task
from tests.integration.conftest import tts_calls, wait_until
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.integration

# How the machine's Redis is started (no persistence: a restart empties it).
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def _redis_up(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _all_stored_tickets_allocated(cluster) -> bool:
    stored = WorkflowTicket.objects.count()
    return WorkflowTicket.objects.filter(is_task_allocated=True).count() == stored and cluster.broker.idle()


def test_workers_reconnect_after_redis_restarts_and_no_stored_ticket_is_left_without_its_task(
    cluster, it_workflow, fake_tts
):
    url = urlsplit(settings.CELERY_BROKER_URL)
    if (url.hostname, url.port or 6379) not in {("127.0.0.1", 6379), ("localhost", 6379)}:
        pytest.fail(f"this test restarts the local Redis on 127.0.0.1:6379, not {url.hostname}:{url.port}")
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2, socket_timeout=5)
    worker = cluster.start(
        "survivor", concurrency=2, beat=True, ALLOCATION_SWEEP_INTERVAL=1, ALLOCATION_STALE_SECONDS=3
    )
    for n in range(3):
        cluster.broker.send_ticket(ticket_payload(f"TX-BEFORE-{n}"))
    wait_until(lambda: _all_stored_tickets_allocated(cluster), timeout=30, what="the first tickets")

    # Tickets in flight while the broker goes away.
    fake_tts.state.configure({"delay": 1})
    calls = tts_calls(fake_tts)
    for n in range(4):
        cluster.broker.send_ticket(ticket_payload(f"TX-DURING-{n}"))
    wait_until(lambda: tts_calls(fake_tts) > calls, timeout=30, what="a task in flight")
    connected_before = worker.log().count("Connected to redis://")
    try:
        with contextlib.suppress(redis.ConnectionError):  # the server drops the connection as it exits
            client.shutdown(nosave=True)
        wait_until(lambda: not _redis_up(client), timeout=10, what="Redis to stop")
        time.sleep(2)  # workers notice the broken connection and start retrying
    finally:
        # Always leave Redis running, whatever happened above.
        if not _redis_up(client):
            subprocess.run(REDIS_START, check=True, timeout=30)
        wait_until(lambda: _redis_up(client), timeout=30, what="Redis to be back")
    fake_tts.state.configure({"delay": 0})

    wait_until(
        lambda: worker.log().count("Connected to redis://") > connected_before,
        timeout=60,
        what="the worker to reconnect",
    )
    after = [f"TX-AFTER-{n}" for n in range(5)]
    for number in after:
        cluster.broker.send_ticket(ticket_payload(number))

    wait_until(
        lambda: WorkflowTicket.objects.filter(ticket_number__in=after, is_task_allocated=True).count() == 5,
        timeout=60,
        what="tickets sent after the restart to be allocated",
    )
    # Tickets stored before the restart whose allocation message died with
    # Redis are picked up by the sweeper: none stays without its task.
    wait_until(lambda: _all_stored_tickets_allocated(cluster), timeout=60, what="every stored ticket")
    assert worker.process.poll() is None
    for ticket in WorkflowTicket.objects.all():
        assert ticket.tasks.count() == 1
    assert Task.objects.count() == WorkflowTicket.objects.count() >= 3 + 5
