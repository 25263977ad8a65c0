"""Schemathesis drives every operation of the OpenAPI schema, in-process, as staff.

No answer may be a 5xx or contradict the schema (status code, content type,
body shape). Bounded: a few dozen examples per operation keep the run short.
"""

import re

import pytest
import responses
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from conftest import ROUND_ROBIN_URL, make_workflow
from task import services as task_services
from task.models import Task
from tickets.models import WorkflowTicket
from workflow.models import Roles
from workflow_api.authentication import mint_token
from workflow_api.wsgi import application

EXAMPLES_PER_OPERATION = 30


def _staff_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(user_id=1, is_staff=True)}"}


# Loaded once at collection, through the real schema endpoint (which itself needs the token).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, headers=_staff_headers())


@pytest.fixture
def fuzz_data(db):
    """A little of everything, with small ids that generated paths hit now and then."""
    agent, manager = Roles.objects.create(name="Agent"), Roles.objects.create(name="Manager")
    workflow = make_workflow(name="Fuzzed", department="IT", category="Support", steps=[agent, manager])
    for number in range(3):
        ticket = WorkflowTicket.objects.create(
            ticket_number=f"TX-FUZZ-{number}", subject="Fuzz", department="IT", category="Support"
        )
        if number:
            task = Task.objects.create(ticket=ticket, workflow=workflow, current_step=workflow.steps.first())
            task_services.task_assign_user(task_id=task.pk, user_data={"userID": 3, "role": "Agent"})


@pytest.fixture
def keep_test_transaction_across_requests():
    """Django closes connections around each WSGI request; that would end the test's transaction.

    Django's own test client disconnects the same handlers while it runs a request.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def tts_answers_every_role():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(re.compile(re.escape(ROUND_ROBIN_URL) + ".*"), json=[3, 6, 7])
        yield


@pytest.fixture
def no_anonymous_rate_limit(settings):
    """Schemathesis also sends each request without credentials, hundreds a minute; those must stay 401."""
    settings.API_THROTTLE_ANON_RATE = None


@schema.parametrize()
@pytest.mark.django_db
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
    database=None,
)
def test_api_answers_every_generated_request_as_documented(
    case, keep_test_transaction_across_requests, fuzz_data, tts_answers_every_role, no_anonymous_rate_limit
):
    # positive_data_acceptance is left out: schema-valid input that breaks a
    # business rule (a name already taken, an id that does not exist, a task
    # already completed) is refused with a documented 400/404/409, as it must be.
    case.call_and_validate(headers=_staff_headers(), excluded_checks=[positive_data_acceptance])
