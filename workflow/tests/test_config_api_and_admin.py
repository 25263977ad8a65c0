import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError

from conftest import make_workflow
from workflow.models import Steps, Workflows

pytestmark = pytest.mark.django_db


def test_workflow_cannot_be_created_deployed_through_the_api(api_client):
    response = api_client.post(
        "/workflow/api/workflows/",
        {"name": "New", "department": "IT", "category": "Net", "status": "deployed"},
        format="json",
    )

    assert response.status_code == 400
    assert "status" in response.json()
    assert not Workflows.objects.exists()


def test_workflow_with_steps_can_be_deployed_through_the_api(api_client, role):
    workflow = make_workflow(status=Workflows.Status.DRAFT, steps=[role])

    response = api_client.patch(
        f"/workflow/api/workflows/{workflow.pk}/", {"status": "deployed"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["steps"][0]["role_name"] == role.name
    workflow.refresh_from_db()
    assert workflow.status == Workflows.Status.DEPLOYED


def test_last_step_of_a_deployed_workflow_cannot_be_deleted(api_client, workflow):
    step = workflow.steps.get()

    response = api_client.delete(f"/workflow/api/steps/{step.pk}/")

    assert response.status_code == 409
    assert Steps.objects.filter(pk=step.pk).exists()


def test_step_order_is_unique_per_workflow(workflow, role):
    with pytest.raises(IntegrityError):
        Steps.objects.create(workflow=workflow, role=role, name="Again", order=1)


def test_duplicate_step_order_through_the_api_is_a_field_error(api_client, workflow, role):
    response = api_client.post(
        "/workflow/api/steps/",
        {"workflow": workflow.pk, "role": role.pk, "name": "Again", "order": 1},
        format="json",
    )

    assert response.status_code == 400


def test_roles_crud_and_unique_name(api_client):
    created = api_client.post("/workflow/api/roles/", {"name": "Manager"}, format="json")
    duplicate = api_client.post("/workflow/api/roles/", {"name": "Manager"}, format="json")

    assert created.status_code == 201
    assert duplicate.status_code == 400
    assert "name" in duplicate.json()


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")
    client.force_login(user)
    return client


def _workflow_admin_form(role, *, status: str, steps: list[dict]) -> dict:
    data = {
        "name": "Admin-made",
        "description": "",
        "department": "IT Department",
        "category": "IT Support",
        "sub_category": "",
        "is_published": "on",
        "status": status,
        "end_logic": "",
        "default_priority": "medium",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for index, step in enumerate(steps):
        for key, value in step.items():
            data[f"steps-{index}-{key}"] = value
    return data


def test_admin_refuses_to_deploy_a_workflow_without_steps(admin_client, role):
    response = admin_client.post(
        "/admin/workflow/workflows/add/", _workflow_admin_form(role, status="deployed", steps=[])
    )

    assert response.status_code == 200  # the form is shown again, with the error
    assert b"no steps cannot be deployed" in response.content
    assert not Workflows.objects.exists()


def test_admin_deploys_a_workflow_submitted_with_its_steps(admin_client, role):
    steps = [
        {
            "order": "1",
            "name": "Triage",
            "role": str(role.pk),
            "assignment_strategy": "round_robin",
            "completion_policy": "manual",
        }
    ]

    response = admin_client.post(
        "/admin/workflow/workflows/add/", _workflow_admin_form(role, status="deployed", steps=steps)
    )

    assert response.status_code == 302
    workflow = Workflows.objects.get()
    assert workflow.status == Workflows.Status.DEPLOYED
    assert list(workflow.steps.values_list("name", flat=True)) == ["Triage"]


def test_a_unique_name_taken_after_validation_is_409_not_500(api_client, monkeypatch):
    from rest_framework.validators import UniqueValidator

    from workflow.models import Roles

    Roles.objects.create(name="Manager")
    # As if a concurrent request created the role between our validation and our INSERT.
    monkeypatch.setattr(UniqueValidator, "__call__", lambda self, value, field: None)

    response = api_client.post("/workflow/api/roles/", {"name": "Manager"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_a_step_cannot_move_to_another_workflow(api_client, workflow, role):
    other = make_workflow(name="Other", status=Workflows.Status.DRAFT, steps=[role])
    step = workflow.steps.get()

    response = api_client.patch(f"/workflow/api/steps/{step.pk}/", {"workflow": other.pk}, format="json")

    assert response.status_code == 400
    assert "workflow" in response.json()
    assert workflow.steps.count() == 1


def test_admin_keeps_the_last_step_of_a_deployed_workflow(admin_client, workflow):
    step = workflow.steps.get()

    single = admin_client.post(f"/admin/workflow/steps/{step.pk}/delete/", {"post": "yes"})
    bulk = admin_client.post(
        "/admin/workflow/steps/", {"action": "delete_selected", "_selected_action": [step.pk], "post": "yes"}
    )

    assert single.status_code == 403
    assert bulk.status_code == 403
    assert Steps.objects.filter(pk=step.pk).exists()


def test_admin_deletes_a_step_the_workflow_can_spare(admin_client, workflow, role):
    spare = Steps.objects.create(workflow=workflow, role=role, name="Spare", order=2)

    response = admin_client.post(f"/admin/workflow/steps/{spare.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Steps.objects.filter(pk=spare.pk).exists()
    assert workflow.steps.count() == 1


def test_a_name_over_its_documented_length_is_refused_even_with_surrounding_spaces(api_client):
    too_long = api_client.post("/workflow/api/roles/", {"name": " " + "a" * 100}, format="json")
    padded = api_client.post("/workflow/api/roles/", {"name": "  Manager "}, format="json")

    assert too_long.status_code == 400
    assert "no more than 100 characters" in too_long.json()["name"][0]
    assert padded.status_code == 201
    assert padded.json()["name"] == "Manager"
