"""/metrics: Prometheus text for staff and for the scraper's token, and nobody else."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from conftest import client_as, make_task
from task.models import Task
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.django_db

TOKEN = "a-long-random-metrics-token-for-tests"


@pytest.fixture
def figures(workflow) -> None:
    make_task(workflow, number="TX1")
    make_task(workflow, number="TX2", status=Task.Status.IN_PROGRESS)
    make_task(workflow, number="TX3", status=Task.Status.COMPLETED)
    waiting = WorkflowTicket.objects.create(ticket_number="TX4", subject="s", allocation_error="no_workflow")
    WorkflowTicket.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(minutes=5))


def _samples(body: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line and not line.startswith("#")
    }


def test_the_scraper_token_reads_the_figures(client, settings, figures):
    settings.METRICS_TOKEN = TOKEN

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.content.decode())
    assert samples['workflow_api_open_tasks{status="pending"}'] == 1
    assert samples['workflow_api_open_tasks{status="in_progress"}'] == 1
    assert samples['workflow_api_open_tasks{status="on_hold"}'] == 0
    assert 299 <= samples["workflow_api_oldest_unallocated_ticket_seconds"] <= 330
    assert "# TYPE workflow_api_open_tasks gauge" in response.content.decode()


def test_staff_sessions_read_the_figures(client, db):
    client.force_login(User.objects.create_user("ops", password="pw-ops-123", is_staff=True))

    body = client.get("/metrics").content.decode()

    assert "workflow_api_oldest_unallocated_ticket_seconds 0.000" in body


@pytest.mark.parametrize("sent", ["Bearer wrong-token", "Bearer ", "Basic abc", ""])
def test_anyone_else_is_refused(client, settings, db, sent):
    settings.METRICS_TOKEN = TOKEN

    response = client.get("/metrics", HTTP_AUTHORIZATION=sent) if sent else client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_without_a_configured_token_no_bearer_is_accepted(client, settings, db):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_non_staff_sessions_and_api_jwts_are_refused(client, db):
    client.force_login(User.objects.create_user("someone", password="pw-someone-123"))

    assert client.get("/metrics").status_code == 403
    assert client_as(3, staff=True).get("/metrics").status_code == 401
