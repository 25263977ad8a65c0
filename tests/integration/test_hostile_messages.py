"""Hostile messages on the ticket queue: a real worker refuses them, logs no content, and goes on."""

import json
import time
import uuid
import zlib
from pathlib import Path

import pytest
from kombu import Connection, Producer

from conftest import ticket_payload
from task.models import Task
from tests.integration.conftest import wait_until
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.integration

# In every hostile message, where a requester's address would be; never in a log.
EMAIL = "intake.marker.7f3a@example.org"
RECEIVE_TICKET = "tickets.tasks.receive_ticket"
EMBED = '{"callbacks": null, "errbacks": null, "chain": null, "chord": null}'


def _nested(levels: int) -> list:
    """A list nesting `levels` deep: _nested(1) == []."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _publish_raw(broker, body: bytes, *, content_type: str, task: str = RECEIVE_TICKET) -> str:
    """Put a message on the ticket queue as a producer would, with any body and content type."""
    message_id = str(uuid.uuid4())
    headers = {
        "lang": "py",
        "task": task,
        "id": message_id,
        "root_id": message_id,
        "parent_id": None,
        "group": None,
        "retries": 0,
        "eta": None,
        "expires": None,
        "timelimit": [None, None],
        # What a Celery producer writes: the arguments' repr.
        "argsrepr": f"({{'ticket_id': 'TX-HOSTILE', 'email': '{EMAIL}'}},)",
        "kwargsrepr": "{}",
        "origin": "producer@test",
    }
    with Connection(broker.url) as connection:
        Producer(connection).publish(
            body,
            exchange="",
            routing_key=broker.ticket_queue,
            content_type=content_type,
            content_encoding="utf-8",
            headers=headers,
        )
    return message_id


def _envelope(ticket_json: str) -> bytes:
    """A protocol 2 task body around one argument given as JSON text."""
    return f"[[{ticket_json}], {{}}, {EMBED}]".encode()


def _hostile_ticket(number: str, **fields) -> dict:
    return ticket_payload(number, employee={"email": EMAIL, "name": "Jane Requester"}, **fields)


def _allocated(number: str) -> bool:
    return WorkflowTicket.objects.filter(ticket_number=number, is_task_allocated=True).exists()


def test_ticket_nesting_520_deep_is_refused_and_the_worker_goes_on_with_the_next_ticket(cluster, it_workflow):
    worker = cluster.start("poison", concurrency=1)
    poison = _hostile_ticket("TX-DEEP-520", attachments=_nested(520))
    assert len(json.dumps(poison)) < 2000  # about 1 KB, as in the attack

    sent = time.monotonic()
    cluster.broker.send_ticket(poison)
    cluster.broker.send_ticket(ticket_payload("TX-AFTER-DEEP"))
    wait_until(lambda: _allocated("TX-AFTER-DEEP"), timeout=60, what="the next ticket to be allocated")
    elapsed = time.monotonic() - sent

    assert worker.process.poll() is None, "the worker died"
    assert elapsed < 10
    wait_until(cluster.broker.idle, timeout=20, what="the refused message to be acknowledged")
    assert not WorkflowTicket.objects.filter(ticket_number="TX-DEEP-520").exists()
    log = worker.log()
    assert "RecursionError" not in log
    assert "arguments nest deeper than MESSAGE_MAX_DEPTH (32 levels); acknowledged, not run" in log
    assert EMAIL not in log
    assert "Jane Requester" not in log


def test_nesting_up_to_the_limit_is_accepted_and_one_level_more_is_refused(cluster, it_workflow):
    worker = cluster.start("depth", concurrency=1, MESSAGE_MAX_DEPTH=8)
    # The ticket is level 1, so its attachments add at most 7 levels.
    cluster.broker.send_ticket(_hostile_ticket("TX-DEPTH-9", attachments=_nested(8)))
    cluster.broker.send_ticket(_hostile_ticket("TX-DEPTH-8", attachments=_nested(7)))

    wait_until(lambda: _allocated("TX-DEPTH-8"), timeout=60, what="the ticket at the limit to be allocated")
    wait_until(cluster.broker.idle, timeout=20, what="both messages to be handled")
    assert not WorkflowTicket.objects.filter(ticket_number="TX-DEPTH-9").exists()
    assert "nest deeper than MESSAGE_MAX_DEPTH (8 levels)" in worker.log()
    assert EMAIL not in worker.log()


def test_messages_celery_cannot_decode_or_route_are_logged_without_their_content(cluster, it_workflow):
    worker = cluster.start("hostile", concurrency=1)
    ticket = json.dumps(_hostile_ticket("TX-HOSTILE"))
    hostile = {
        "nesting over 1,000": _envelope(ticket[:-1] + ', "attachments": ' + "[" * 1100 + "]" * 1100 + "}"),
        "a 5,000-digit integer": _envelope(ticket[:-1] + ', "id": ' + "7" * 5000 + "}"),
        "malformed JSON": _envelope(ticket[:-1]),
        "invalid UTF-8": _envelope(ticket[:-1] + ', "note": "BYTES"}').replace(b"BYTES", b"\xff\xfe"),
        "pickle": _envelope(ticket),
        "unknown task": _envelope(ticket),
    }
    ids = {}
    for kind, body in hostile.items():
        ids[kind] = _publish_raw(
            cluster.broker,
            body,
            content_type="application/x-python-serialize" if kind == "pickle" else "application/json",
            task="tickets.tasks.no_such_task" if kind == "unknown task" else RECEIVE_TICKET,
        )
    cluster.broker.send_ticket(ticket_payload("TX-AFTER-HOSTILE", employee={"email": EMAIL}))

    wait_until(lambda: _allocated("TX-AFTER-HOSTILE"), timeout=60, what="the good ticket to be allocated")
    wait_until(cluster.broker.idle, timeout=20, what="every hostile message to be acknowledged or rejected")
    assert worker.process.poll() is None, "the worker died"
    assert not WorkflowTicket.objects.filter(ticket_number="TX-HOSTILE").exists()
    assert Task.objects.count() == 1

    log = worker.log()
    assert EMAIL not in log
    assert "email" not in log
    assert "argsrepr" not in log
    for kind, message_id in ids.items():
        assert f"Refused message {message_id} " in log, kind
    assert "task tickets.tasks.no_such_task is not registered here" in log
    assert "content type not accepted" in log
    # Celery's own reports, which quote the body, are gone.
    assert "body:" not in log
    assert "The full contents of the message body" not in log


def test_oversized_tickets_are_refused_with_a_reason_and_write_nothing(cluster, it_workflow):
    worker = cluster.start("sizes", concurrency=1)
    cluster.broker.send_ticket(_hostile_ticket("TX-10MIB", description="x" * (10 * 1024 * 1024)))
    cluster.broker.send_ticket(_hostile_ticket("TX-LONG-TEXT", description="x" * (64 * 1024 + 1)))
    cluster.broker.send_ticket(ticket_payload("TX-AFTER-SIZES"))

    wait_until(lambda: _allocated("TX-AFTER-SIZES"), timeout=60, what="the next ticket to be allocated")
    wait_until(cluster.broker.idle, timeout=20, what="the refused messages to be acknowledged")
    assert worker.process.poll() is None, "the worker died"
    assert list(WorkflowTicket.objects.values_list("ticket_number", flat=True)) == ["TX-AFTER-SIZES"]
    log = worker.log()
    assert "is over MESSAGE_MAX_BYTES (1048576); acknowledged, not run" in log
    assert "Rejected ticket message (ticket number 'TX-LONG-TEXT')" in log
    assert "over the limit of 65536 bytes (UTF-8)" in log
    assert EMAIL not in log
    assert "xxxxxxxx" not in log


def test_a_compressed_body_that_unpacks_past_the_size_limit_is_refused_without_unpacking_it_all(
    cluster, it_workflow
):
    # 200 MiB of the same byte, about 200 KiB compressed: unpacked whole, it would fill the worker's memory.
    bomb = zlib.compress(
        _envelope(json.dumps(ticket_payload("TX-BOMB", description=""))) + b" " * (200 << 20)
    )
    worker = cluster.start("bomb", concurrency=1)
    with Connection(cluster.broker.url) as connection:
        message_id = str(uuid.uuid4())
        Producer(connection).publish(
            bomb,
            exchange="",
            routing_key=cluster.broker.ticket_queue,
            content_type="application/json",
            content_encoding="utf-8",
            headers={
                "lang": "py",
                "task": RECEIVE_TICKET,
                "id": message_id,
                "compression": "application/x-gzip",
            },
        )
    cluster.broker.send_ticket(ticket_payload("TX-AFTER-BOMB"))

    wait_until(lambda: _allocated("TX-AFTER-BOMB"), timeout=60, what="the next ticket to be allocated")
    wait_until(cluster.broker.idle, timeout=20, what="the refused message to be acknowledged")
    assert worker.process.poll() is None, "the worker died"
    assert not WorkflowTicket.objects.filter(ticket_number="TX-BOMB").exists()
    assert f"Refused message {message_id}" in worker.log()
    # The main process decodes: its peak memory stayed far below the 200 MiB the body unpacks to.
    status = Path(f"/proc/{worker.pid}/status").read_text()
    peak_kib = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    assert peak_kib < 150 * 1024, f"worker peaked at {peak_kib} KiB"
