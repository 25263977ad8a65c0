"""Metric counters: counted in memory by every process, added up in the database, read at /metrics."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import make_workflow, ticket_payload
from tests.test_demo_and_fake_tts import _clean_env
from tickets import tasks
from workflow_api import metrics

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]


def _samples(client) -> dict[str, float]:
    client.force_login(User.objects.create_user("ops", password="pw-ops-123", is_staff=True))
    body = client.get("/metrics").content.decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line and not line.startswith("#")
    }


def test_received_tickets_allocations_and_tts_requests_are_counted(client, tts, role):
    make_workflow(steps=[role])
    tts.role(role.name, [3, 6, 7])
    tasks.receive_ticket.delay(ticket_payload("TX-1"))
    tasks.receive_ticket.delay(ticket_payload("TX-1", subject="Updated"))
    tasks.receive_ticket.delay(ticket_payload("TX-2", department="Nowhere"))
    tasks.receive_ticket.delay({"subject": "no number"})

    samples = _samples(client)

    assert samples["workflow_api_tickets_received_total"] == 3
    assert samples['workflow_api_allocations_total{outcome="created"}'] == 1
    assert samples['workflow_api_allocations_total{outcome="no_workflow"}'] == 1
    # As many as TTS saw (a cold route cache may ask twice for the first ticket).
    assert samples['workflow_api_tts_requests_total{outcome="ok"}'] == tts.calls
    assert samples["workflow_api_tts_request_seconds_count"] == tts.calls
    assert samples['workflow_api_tts_request_seconds_bucket{le="+Inf"}'] == tts.calls
    assert samples["workflow_api_allocation_seconds_count"] == 2
    assert samples['workflow_api_allocation_seconds_bucket{le="+Inf"}'] == 2


def test_tts_failures_are_counted_by_outcome(client, tts, role):
    make_workflow(steps=[role])
    tts.role(role.name, {"not": "a list"})
    tasks.receive_ticket.delay(ticket_payload("TX-1"))

    samples = _samples(client)

    assert samples['workflow_api_tts_requests_total{outcome="bad_response"}'] == 1
    assert samples['workflow_api_allocations_total{outcome="tts_bad_response"}'] == 1


def test_counting_costs_the_caller_no_statement(db):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(1000):
            metrics.count("tickets_received_total")
            metrics.observe("allocation_seconds", 0.003)

    assert queries.captured_queries == []


def _python(env: dict, code: str) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, check=True, timeout=60)


SETUP = "import django, os, time; django.setup(); from workflow_api import metrics; "


def test_counts_of_several_processes_add_up_in_the_database(tmp_path):
    env = _clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'metrics.sqlite3'}", METRICS_FLUSH_SECONDS="0.2")
    env["DJANGO_SETTINGS_MODULE"] = "workflow_api.settings"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True
    )

    # One process exits normally (its counts are added at exit); one is killed
    # after its flusher ran (os._exit skips exit handlers).
    _python(env, SETUP + "[metrics.count('tickets_received_total') for _ in range(5)]")
    _python(
        env,
        SETUP + "[metrics.count('tickets_received_total') for _ in range(7)]; "
        "metrics.observe('allocation_seconds', 0.02); time.sleep(1.5); os._exit(0)",
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            SETUP + "from django.utils import timezone; print(metrics.render(now=timezone.now()))",
        ],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout

    assert "workflow_api_tickets_received_total 12" in out
    assert 'workflow_api_allocation_seconds_bucket{le="0.025"} 1' in out
    assert 'workflow_api_allocation_seconds_bucket{le="0.01"} 0' in out
    assert "workflow_api_allocation_seconds_count 1" in out
