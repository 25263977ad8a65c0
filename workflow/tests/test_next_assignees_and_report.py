"""Staff answers that change nothing: who gets the next tickets of a step, and how a role's work spread."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import client_as, make_task, make_workflow
from task import services
from task.models import Assignment, RoundRobinState
from workflow.models import Roles, Steps

pytestmark = pytest.mark.django_db

ROLE = "Agent"


@pytest.fixture
def agent(db) -> Roles:
    return Roles.objects.create(name=ROLE)


@pytest.fixture
def step(agent) -> Steps:
    return make_workflow(steps=[agent]).steps.get()


def _next(client, step: Steps, **params):
    return client.get(f"/workflow/api/steps/{step.pk}/next_assignees/", params)


def test_round_robin_next_assignees_follow_the_specs_examples(api_client, step, tts):
    tts.role(ROLE, [3, 6, 7])

    three = _next(api_client, step, count=2).json()
    Steps.objects.filter(pk=step.pk).update(max_assignees=1)
    one = _next(api_client, step, count=4).json()

    assert three == {
        "step_id": step.pk,
        "strategy": "round_robin",
        "next": [{"position": 1, "user_ids": [3, 6, 7]}, {"position": 2, "user_ids": [3, 6, 7]}],
    }
    assert [entry["user_ids"] for entry in one["next"]] == [[3], [6], [7], [3]]


def test_next_assignees_ask_tts_once_default_to_ten_and_change_nothing(api_client, step, tts):
    tts.role(ROLE, [3, 6, 7])

    response = _next(api_client, step)

    assert response.status_code == 200
    assert len(response.json()["next"]) == 10
    assert tts.calls == 1
    assert not RoundRobinState.objects.exists()


def test_when_nobody_would_be_eligible_the_decision_lists_no_users(api_client, step, tts):
    tts.role(ROLE, [3])
    services.availability_set(user_id=3, actor="system", status="unavailable")

    response = _next(api_client, step, count=2)

    assert [entry["user_ids"] for entry in response.json()["next"]] == [[], []]


@pytest.mark.parametrize("count", [0, 101, "many"])
def test_a_count_outside_1_to_100_is_a_field_error(api_client, step, tts, count):
    tts.role(ROLE, [3, 6, 7])

    response = _next(api_client, step, count=count)

    assert response.status_code == 400
    assert "count" in response.json()


def test_only_staff_ask_for_next_assignees(step, tts):
    tts.role(ROLE, [3, 6, 7])

    assert _next(client_as(3), step).status_code == 403


def test_next_assignees_while_tts_is_down_is_503(api_client, step, tts):
    tts.fail(ROLE, status=500)

    assert _next(api_client, step).status_code == 503


def _report(client, role: Roles, **params):
    return client.get(f"/workflow/api/roles/{role.pk}/assignment_report/", params)


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_the_report_counts_each_users_assignments_open_work_and_completions(api_client, agent, step, tts):
    workflow = step.workflow
    tts.role(ROLE, [3, 6, 7])
    make_task(workflow, number="T1", users=[{"userID": 3, "role": ROLE}, {"userID": 6, "role": ROLE}])
    done = make_task(workflow, number="T2", users=[{"userID": 3, "role": ROLE}])
    services.task_update_user_status(task_id=done.pk, user_id=3, new_status=Assignment.Status.COMPLETED)
    make_task(workflow, number="T3", users=[{"userID": 9, "role": ROLE}])  # no longer in TTS's list

    response = _report(api_client, agent, since=_iso(timezone.now() - timedelta(hours=1)))

    assert response.status_code == 200
    body = response.json()
    assert body["role"] == ROLE
    assert body["users"] == [
        {"user_id": 3, "assigned": 2, "open": 1, "completed": 1},
        {"user_id": 6, "assigned": 1, "open": 1, "completed": 0},
        {"user_id": 7, "assigned": 0, "open": 0, "completed": 0},
    ]
    assert body["spread"] == 2


def test_the_report_counts_only_the_window(api_client, agent, step, tts):
    tts.role(ROLE, [3])
    make_task(step.workflow, number="T1", users=[{"userID": 3, "role": ROLE}])
    now = timezone.now()

    before = _report(
        api_client, agent, since=_iso(now - timedelta(days=2)), until=_iso(now - timedelta(days=1))
    )

    assert before.json()["users"] == [{"user_id": 3, "assigned": 0, "open": 1, "completed": 0}]
    assert before.json()["spread"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until"),
        ({"since": "2025-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until"),
    ],
)
def test_a_report_window_that_is_missing_or_backwards_is_a_field_error(api_client, agent, tts, params, field):
    tts.role(ROLE, [3])

    response = _report(api_client, agent, **params)

    assert response.status_code == 400
    assert field in response.json()


def test_only_staff_read_the_report(agent, tts):
    tts.role(ROLE, [3])

    assert _report(client_as(3), agent, since="2025-01-01T00:00:00Z").status_code == 403
