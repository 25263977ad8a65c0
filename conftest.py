"""Fixtures shared by every app's tests: one test-data style across the suite."""

import json
from pathlib import Path

import pytest
import responses

from workflow import selectors
from workflow.models import Roles, Steps, Workflows
from workflow_api.celery import app as celery_app

TTS_URL = "http://127.0.0.1:9"  # never contacted: `responses` answers for it
ROUND_ROBIN_URL = f"{TTS_URL}/api/v1/tts/round-robin/"
UPSTREAM_EXAMPLE = Path(__file__).resolve().parent / "tickets" / "tests" / "data" / "upstream_ticket.json"


@pytest.fixture(autouse=True)
def _eager_celery(request, settings):
    """Unit tests run Celery tasks in-process; integration tests use real workers."""
    settings.TTS_SERVICE_URL = TTS_URL
    if request.node.get_closest_marker("integration"):
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Throttle counters live in the cache: each test starts with none, as a fresh minute would."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _metrics_in_memory(settings):
    """Metric counts stay in memory: no flusher thread writing outside the test's transaction."""
    from workflow_api import metrics

    settings.METRICS_FLUSH_SECONDS = 0
    metrics.discard_pending()
    yield
    metrics.discard_pending()


@pytest.fixture(autouse=True)
def _fresh_routes():
    """Each test builds its own workflows: start without routes cached by an earlier test.

    A stale entry would still be caught (see workflow.selectors.ticket_route),
    but at the price of a second TTS call that tests counting calls would see.
    """
    selectors.forget_routes()
    yield
    selectors.forget_routes()


class FakeTTS:
    """Programs `responses` to answer the round-robin endpoint per role."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock

    def role(self, role_name: str, user_ids: object, status: int = 200) -> None:
        self.mock.get(
            ROUND_ROBIN_URL,
            json=user_ids,
            status=status,
            match=[responses.matchers.query_param_matcher({"role_name": role_name})],
        )

    def fail(self, role_name: str, **kwargs) -> None:
        self.mock.get(
            ROUND_ROBIN_URL,
            match=[responses.matchers.query_param_matcher({"role_name": role_name})],
            **kwargs,
        )

    def role_after(self, role_name: str, user_ids: list[int], change) -> None:
        """Answer for the role only once `change()` has run, as when an admin saves while TTS is asked."""

        def answer(request):
            change()
            return 200, {}, json.dumps(user_ids)

        self.mock.add_callback(
            responses.GET,
            ROUND_ROBIN_URL,
            callback=answer,
            match=[responses.matchers.query_param_matcher({"role_name": role_name})],
        )

    @property
    def calls(self) -> int:
        return len(self.mock.calls)


@pytest.fixture
def tts():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeTTS(mock)


@pytest.fixture
def role(db) -> Roles:
    return Roles.objects.create(name="IT Support Technician")


def make_workflow(
    *,
    name: str = "IT support",
    department: str = "IT Department",
    category: str = "IT Support",
    sub_category: str = "",
    steps: list[Roles] | None = None,
    **fields,
) -> Workflows:
    """A published, deployed workflow with one step per role given."""
    fields.setdefault("is_published", True)
    fields.setdefault("status", Workflows.Status.DEPLOYED)
    workflow = Workflows.objects.create(
        name=name, department=department, category=category, sub_category=sub_category, **fields
    )
    for order, step_role in enumerate(steps or [], start=1):
        Steps.objects.create(workflow=workflow, role=step_role, name=f"Step {order}", order=order)
    return workflow


@pytest.fixture
def workflow(role) -> Workflows:
    return make_workflow(steps=[role])


def make_task(
    workflow: Workflows,
    *,
    number: str = "TX1",
    users: list[dict] = (),
    status: str = "pending",
    step_order: int = 1,
    priority: str = "",
):
    """A task on one of `workflow`'s steps, its `users` assigned through the service as staff would.

    `users`: entries in the spec's shape (`userID`, and optionally `status`, `role`).
    `status` is reached through its service; in_progress is set directly (a user starting work reaches it).
    """
    from django.utils import timezone

    from task import services
    from task.models import Task
    from tickets.models import WorkflowTicket

    ticket = WorkflowTicket.objects.create(
        ticket_number=number, subject=f"Subject {number}", priority=priority, is_task_allocated=True
    )
    step = workflow.steps.get(order=step_order)
    now = timezone.now()
    task = Task.objects.create(
        ticket=ticket,
        workflow=workflow,
        current_step=step,
        step_entered_at=now,
        step_due_at=step.deadline(workflow=workflow, ticket_priority=priority, entered_at=now),
    )
    for entry in users:
        services.task_assign_user(task_id=task.pk, user_data=entry)
    if status == Task.Status.COMPLETED:
        services.task_complete(task_id=task.pk)
    elif status == Task.Status.ON_HOLD:
        services.task_hold(task_id=task.pk, reason="test")
    elif status == Task.Status.CANCELLED:
        services.task_cancel(task_id=task.pk, reason="test")
    elif status != Task.Status.PENDING:
        Task.objects.filter(pk=task.pk).update(status=status)
    return Task.objects.get(pk=task.pk)


def ticket_payload(number: str = "TX20251110000001", **overrides) -> dict:
    """A ticket message in the spec's field names."""
    payload = {
        "ticket_id": number,
        "subject": "Printer is on fire",
        "description": "Smoke since 9am.",
        "department": "IT Department",
        "category": "IT Support",
        "sub_category": "",
        "priority": "High",
        "status": "Open",
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def upstream_payload() -> dict:
    """The upstream ticket service's full serialized ticket, as it arrives on the queue."""
    return json.loads(UPSTREAM_EXAMPLE.read_text())


def client_as(user_id: int, *, staff: bool = False):
    """A REST client sending a real bearer token for `user_id`, staff or not."""
    from rest_framework.test import APIClient

    from workflow_api.authentication import mint_token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {mint_token(user_id=user_id, is_staff=staff)}")
    return client


@pytest.fixture
def api_client(db):
    """A REST client with the rights of a staff member (administrator)."""
    from rest_framework.test import APIClient

    from workflow_api.authentication import mint_token

    client = APIClient()
    # A real token through the real authentication, as the frontend sends it.
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {mint_token(user_id=1, is_staff=True)}")
    return client
