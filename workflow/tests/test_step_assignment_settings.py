"""A step's assignment strategy and assignee count, as staff set them through the API and admin."""

import pytest
from django.contrib.auth.models import User

from conftest import client_as
from workflow.models import Steps

pytestmark = pytest.mark.django_db

STEPS = "/workflow/api/steps/"


def test_a_step_is_created_load_balanced_with_two_assignees(api_client, workflow, role):
    response = api_client.post(
        STEPS,
        {
            "workflow": workflow.pk,
            "role": role.pk,
            "name": "Second line",
            "order": 2,
            "assignment_strategy": "load_balanced",
            "max_assignees": 2,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["assignment_strategy"] == "load_balanced"
    step = Steps.objects.get(pk=response.json()["step_id"])
    assert (step.assignment_strategy, step.assignee_count) == ("load_balanced", 2)


def test_a_step_without_a_strategy_is_round_robin_with_the_default_count(
    api_client, workflow, role, settings
):
    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = 3

    response = api_client.post(
        STEPS, {"workflow": workflow.pk, "role": role.pk, "name": "Plain", "order": 2}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["assignment_strategy"] == "round_robin"
    assert response.json()["max_assignees"] is None
    assert Steps.objects.get(pk=response.json()["step_id"]).assignee_count == 3


def test_clearing_max_assignees_falls_back_to_the_default(api_client, workflow):
    step = workflow.steps.get()
    Steps.objects.filter(pk=step.pk).update(max_assignees=5)

    response = api_client.patch(f"{STEPS}{step.pk}/", {"max_assignees": None}, format="json")

    assert response.status_code == 200
    step.refresh_from_db()
    assert step.max_assignees is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"assignment_strategy": "random"}, "assignment_strategy"),
        ({"max_assignees": 0}, "max_assignees"),
        ({"max_assignees": -1}, "max_assignees"),
        ({"max_assignees": 101}, "max_assignees"),
    ],
)
def test_an_unknown_strategy_or_an_assignee_count_out_of_range_is_a_field_error(
    api_client, workflow, body, field
):
    step = workflow.steps.get()

    response = api_client.patch(f"{STEPS}{step.pk}/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    step.refresh_from_db()
    assert (step.assignment_strategy, step.max_assignees) == ("round_robin", None)


def test_non_staff_cannot_change_a_steps_strategy(workflow):
    step = workflow.steps.get()

    response = client_as(3).patch(
        f"{STEPS}{step.pk}/", {"assignment_strategy": "load_balanced"}, format="json"
    )

    assert response.status_code == 403


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123"))
    return client


def test_admin_sets_a_steps_strategy_and_assignee_count(admin_client, workflow):
    step = workflow.steps.get()
    form = {
        "workflow": workflow.pk,
        "role": step.role_id,
        "name": step.name,
        "description": "",
        "instruction": "",
        "order": 1,
        "assignment_strategy": "load_balanced",
        "max_assignees": 2,
        "completion_policy": "manual",
    }

    saved = admin_client.post(f"/admin/workflow/steps/{step.pk}/change/", form)
    refused = admin_client.post(f"/admin/workflow/steps/{step.pk}/change/", {**form, "max_assignees": 101})

    assert saved.status_code == 302
    assert refused.status_code == 200  # the form again, with its error
    step.refresh_from_db()
    assert (step.assignment_strategy, step.max_assignees) == ("load_balanced", 2)
