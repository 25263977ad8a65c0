"""SLAs, escalation and completion policies as staff set them through the API and admin."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from conftest import make_workflow
from workflow.models import Roles, Steps, Workflows

pytestmark = pytest.mark.django_db

WORKFLOWS = "/workflow/api/workflows/"
STEPS = "/workflow/api/steps/"


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123"))
    return client


def test_slas_are_written_and_read_as_drf_durations(api_client, workflow):
    response = api_client.patch(
        f"{WORKFLOWS}{workflow.pk}/",
        {
            "urgent_sla": "01:00:00",
            "high_sla": "04:00:00",
            "low_sla": "2 00:00:00",
            "default_priority": "low",
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["urgent_sla"], body["high_sla"], body["medium_sla"], body["low_sla"]) == (
        "01:00:00",
        "04:00:00",
        None,
        "2 00:00:00",
    )
    workflow.refresh_from_db()
    assert (workflow.high_sla, workflow.default_priority) == (timedelta(hours=4), "low")


def test_a_new_workflow_defaults_to_medium_priority_and_no_slas(api_client):
    response = api_client.post(
        WORKFLOWS, {"name": "Plain", "department": "D", "category": "C"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["default_priority"] == "medium"
    assert response.json()["medium_sla"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"urgent_sla": "05:00:00", "high_sla": "04:00:00"}, "high_sla"),
        ({"high_sla": "04:00:00", "low_sla": "01:00:00"}, "low_sla"),
        ({"medium_sla": "00:00:00"}, "medium_sla"),
        ({"low_sla": "-01:00:00"}, "low_sla"),
        ({"low_sla": 3600}, "low_sla"),
        ({"low_sla": "soon"}, "low_sla"),
        ({"low_sla": "4000 00:00:00"}, "low_sla"),
        ({"default_priority": "critical"}, "default_priority"),
    ],
)
def test_slas_out_of_order_not_positive_or_malformed_are_field_errors(api_client, workflow, body, field):
    response = api_client.patch(f"{WORKFLOWS}{workflow.pk}/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    workflow.refresh_from_db()
    assert (workflow.urgent_sla, workflow.high_sla, workflow.low_sla) == (None, None, None)


def test_an_sla_is_checked_against_those_already_stored(api_client, workflow):
    Workflows.objects.filter(pk=workflow.pk).update(high_sla=timedelta(hours=4))

    response = api_client.patch(f"{WORKFLOWS}{workflow.pk}/", {"medium_sla": "02:00:00"}, format="json")

    assert response.status_code == 400
    assert "medium_sla" in response.json()


def test_a_step_gets_an_sla_an_escalation_to_a_role_and_a_completion_policy(api_client, workflow):
    step = workflow.steps.get()
    leads = Roles.objects.create(name="Leads")

    response = api_client.patch(
        f"{STEPS}{step.pk}/",
        {
            "sla": "00:30:00",
            "escalation": "escalate_to_role",
            "escalation_role": leads.pk,
            "completion_policy": "all",
        },
        format="json",
    )

    assert response.status_code == 200
    step.refresh_from_db()
    assert (step.sla, step.escalation, step.escalation_role, step.completion_policy) == (
        timedelta(minutes=30),
        "escalate_to_role",
        leads,
        "all",
    )


def test_a_step_is_manual_with_no_escalation_unless_told(api_client, workflow, role):
    response = api_client.post(
        STEPS, {"workflow": workflow.pk, "role": role.pk, "name": "Next", "order": 2}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["sla"], body["escalation"], body["escalation_role"], body["completion_policy"]) == (
        None,
        "",
        None,
        "manual",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"escalation": "escalate_to_role"}, "escalation_role"),
        ({"escalation": "panic"}, "escalation"),
        ({"completion_policy": "majority"}, "completion_policy"),
        ({"sla": "00:00:00"}, "sla"),
        ({"sla": "-00:10:00"}, "sla"),
        ({"escalation_role": 999999}, "escalation_role"),
    ],
)
def test_bad_step_settings_are_field_errors(api_client, workflow, body, field):
    step = workflow.steps.get()

    response = api_client.patch(f"{STEPS}{step.pk}/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    step.refresh_from_db()
    assert (step.escalation, step.sla, step.completion_policy) == ("", None, "manual")


def test_admin_refuses_slas_out_of_order(admin_client, role):
    workflow = make_workflow(steps=[role], status=Workflows.Status.DRAFT)
    form = {
        "name": workflow.name,
        "description": "",
        "department": workflow.department,
        "category": workflow.category,
        "sub_category": "",
        "status": "draft",
        "end_logic": "",
        "default_priority": "medium",
        "urgent_sla": "08:00:00",
        "high_sla": "04:00:00",
        "steps-TOTAL_FORMS": "0",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }

    refused = admin_client.post(f"/admin/workflow/workflows/{workflow.pk}/change/", form)
    saved = admin_client.post(
        f"/admin/workflow/workflows/{workflow.pk}/change/", {**form, "urgent_sla": "01:00:00"}
    )

    assert refused.status_code == 200  # the form again, with its error
    assert saved.status_code == 302
    workflow.refresh_from_db()
    assert (workflow.urgent_sla, workflow.high_sla) == (timedelta(hours=1), timedelta(hours=4))


def test_admin_refuses_escalate_to_role_without_a_role(admin_client, workflow):
    step = workflow.steps.get()
    form = {
        "workflow": workflow.pk,
        "role": step.role_id,
        "name": step.name,
        "description": "",
        "instruction": "",
        "order": 1,
        "assignment_strategy": "round_robin",
        "completion_policy": "manual",
        "escalation": "escalate_to_role",
    }

    refused = admin_client.post(f"/admin/workflow/steps/{step.pk}/change/", form)

    assert refused.status_code == 200
    assert b"Required when escalation is escalate_to_role" in refused.content
    step.refresh_from_db()
    assert step.escalation == Steps.Escalation.NONE
