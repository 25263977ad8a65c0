"""Workflow versions: each edit makes a version for new tickets; tasks in flight keep theirs."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import connection

from conftest import make_workflow, ticket_payload
from task import services as task_services
from task.models import Task
from tickets import tasks as ticket_tasks
from tickets.models import WorkflowTicket
from workflow.models import Roles, Steps, Workflows

pytestmark = pytest.mark.django_db

WORKFLOWS = "/workflow/api/workflows/"
STEPS = "/workflow/api/steps/"
ROLE = "IT Support Technician"


@pytest.fixture
def admins(db) -> Roles:
    return Roles.objects.create(name="Admins")


@pytest.fixture
def deployed(api_client, role, manager, tts) -> Workflows:
    """Two steps (technicians, then managers), deployed through the API: version 1."""
    workflow = make_workflow(name="Versioned", steps=[role, manager], status=Workflows.Status.DRAFT)
    response = api_client.patch(f"{WORKFLOWS}{workflow.pk}/", {"status": "deployed"}, format="json")
    assert response.status_code == 200
    tts.role(ROLE, [3, 6, 7])
    tts.role("Manager", [11, 12])
    tts.role("Admins", [21])
    workflow.refresh_from_db()
    return workflow


@pytest.fixture
def manager(db) -> Roles:
    return Roles.objects.create(name="Manager")


def new_task(number: str) -> Task:
    ticket = WorkflowTicket.objects.create(
        ticket_number=number, subject="s", department="IT Department", category="IT Support"
    )
    task, _ = task_services.task_create_for_ticket(ticket_id=ticket.pk)
    return Task.objects.select_related("workflow_version").get(pk=task.pk)


def step_roles(task: Task) -> list[str]:
    """The roles of the steps a task goes through from where it is, moving it to the end."""
    roles = [task.current_step.role.name]
    while True:
        task = task_services.task_move_to_next_step(task_id=task.pk)
        if task.status == Task.Status.COMPLETED:
            return roles
        roles.append(task.current_step.role.name)


def test_deploying_makes_version_one_which_new_tasks_take_and_show(api_client, deployed):
    task = new_task("TX-V1")

    assert deployed.versions.count() == 1
    assert deployed.live_version.number == 1
    assert task.workflow_version == deployed.live_version
    assert api_client.get(f"/tasks/api/tasks/{task.pk}/").json()["workflow_version"] == 1


def test_editing_a_step_answers_the_step_as_it_now_is_and_lists_only_live_steps(api_client, deployed, admins):
    old = deployed.steps.get(order=2)

    response = api_client.patch(f"{STEPS}{old.pk}/", {"role": admins.pk}, format="json")

    assert response.status_code == 200
    assert (response.json()["role_name"], response.json()["order"]) == ("Admins", 2)
    listed = api_client.get(STEPS, {"workflow": deployed.pk}).json()["results"]
    assert [(step["order"], step["role_name"]) for step in listed] == [(1, ROLE), (2, "Admins")]
    detail = api_client.get(f"{WORKFLOWS}{deployed.pk}/").json()
    assert [step["step_id"] for step in detail["steps"]] == [step["step_id"] for step in listed]
    assert Workflows.objects.get(pk=deployed.pk).live_version.number == 2


def test_tasks_in_flight_finish_on_their_versions_steps_and_new_tickets_take_the_new_ones(
    api_client, deployed, admins, role
):
    in_flight = new_task("TX-OLD")
    second = deployed.steps.get(order=2)
    assert api_client.patch(f"{STEPS}{second.pk}/", {"role": admins.pk}, format="json").status_code == 200
    added = {"workflow": deployed.pk, "role": role.pk, "name": "Check", "order": 3}
    assert api_client.post(STEPS, added, format="json").status_code == 201

    fresh = new_task("TX-NEW")

    assert (in_flight.workflow_version.number, fresh.workflow_version.number) == (1, 3)
    assert step_roles(in_flight) == [ROLE, "Manager"]
    assert step_roles(fresh) == [ROLE, "Admins", ROLE]


def test_deleting_the_step_a_task_is_on_or_will_reach_never_breaks_it(api_client, deployed, role):
    on_first = new_task("TX-D1")
    api_client.post(
        STEPS, {"workflow": deployed.pk, "role": role.pk, "name": "Check", "order": 3}, format="json"
    )
    on_second = new_task("TX-D2")
    task_services.task_move_to_next_step(task_id=on_second.pk)

    assert api_client.delete(f"{STEPS}{deployed.steps.get(order=2).pk}/").status_code == 204
    assert api_client.delete(f"{STEPS}{deployed.steps.get(order=1).pk}/").status_code == 204

    assert step_roles(Task.objects.get(pk=on_first.pk)) == [ROLE, "Manager"]
    assert step_roles(Task.objects.get(pk=on_second.pk)) == ["Manager", ROLE]
    assert [step.role.name for step in Workflows.objects.get(pk=deployed.pk).steps.all()] == [ROLE]


def test_a_role_that_an_old_version_still_uses_cannot_be_deleted(api_client, deployed, admins):
    manager_step = deployed.steps.get(order=2)
    api_client.patch(f"{STEPS}{manager_step.pk}/", {"role": admins.pk}, format="json")

    response = api_client.delete(f"/workflow/api/roles/{manager_step.role_id}/")

    assert response.status_code == 409
    assert Roles.objects.filter(name="Manager").exists()


def test_tasks_in_flight_keep_their_versions_slas_and_end_logic(
    api_client, deployed, tts, django_capture_on_commit_callbacks
):
    api_client.patch(f"{WORKFLOWS}{deployed.pk}/", {"medium_sla": "08:00:00"}, format="json")
    in_flight = new_task("TX-S1")
    changed = api_client.patch(
        f"{WORKFLOWS}{deployed.pk}/", {"medium_sla": "01:00:00", "end_logic": "notification"}, format="json"
    )
    assert changed.status_code == 200

    moved = task_services.task_move_to_next_step(task_id=in_flight.pk)
    fresh = new_task("TX-S2")

    moved.refresh_from_db()
    assert moved.step_due_at - moved.step_entered_at == timedelta(hours=8)
    assert fresh.step_due_at - fresh.step_entered_at == timedelta(hours=1)
    with (
        mock.patch("task.services.celery_app.send_task") as send_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        task_services.task_complete(task_id=in_flight.pk)
        task_services.task_complete(task_id=fresh.pk)
    (payload,) = send_task.call_args.kwargs["args"]
    assert (send_task.call_count, payload["task_id"]) == (1, fresh.pk)


def test_an_edit_to_a_workflow_not_deployed_makes_no_version(api_client, role):
    workflow = make_workflow(name="Draft", steps=[role], status=Workflows.Status.DRAFT)

    api_client.patch(f"{STEPS}{workflow.steps.get().pk}/", {"name": "Renamed"}, format="json")
    api_client.patch(f"{WORKFLOWS}{workflow.pk}/", {"low_sla": "09:00:00"}, format="json")

    assert not workflow.versions.exists()
    assert Steps.all_objects.filter(workflow=workflow).count() == 1


def test_admin_lists_versions_with_the_live_one_and_open_tasks_and_edits_steps_as_the_api_does(
    client, deployed, admins
):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123"))
    new_task("TX-A1")
    step = deployed.steps.get(order=2)
    form = {
        "workflow": deployed.pk,
        "role": admins.pk,
        "name": step.name,
        "description": "",
        "instruction": "",
        "order": 2,
        "assignment_strategy": "round_robin",
        "completion_policy": "manual",
    }

    assert client.post(f"/admin/workflow/steps/{step.pk}/change/", form).status_code == 302

    assert Steps.all_objects.get(pk=step.pk).retired_at is not None
    assert deployed.steps.get(order=2).role == admins
    page = client.get(f"/admin/workflow/workflows/{deployed.pk}/change/").content.decode()
    assert "v2 (live) - 0 open task(s)" in page
    assert "v1  - 1 open task(s)" in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL only")
def test_a_new_ticket_stored_with_its_task_in_one_statement_takes_the_live_version(
    api_client, deployed, admins
):
    api_client.patch(f"{STEPS}{deployed.steps.get(order=2).pk}/", {"role": admins.pk}, format="json")

    ticket_tasks.receive_ticket.run(ticket_payload("TX-ONE"))

    task = Task.objects.get(ticket__ticket_number="TX-ONE")
    assert task.workflow_version.number == 2
    assert step_roles(task) == [ROLE, "Admins"]


def test_admin_editing_a_step_inline_on_a_deployed_workflow_makes_a_version_and_keeps_the_old_step(
    client, deployed, admins
):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123"))
    in_flight = new_task("TX-I1")
    first, second = deployed.steps.order_by("order")
    form = {
        "name": deployed.name,
        "description": "",
        "department": deployed.department,
        "category": deployed.category,
        "sub_category": "",
        "is_published": "on",
        "status": "deployed",
        "end_logic": "",
        "default_priority": "medium",
        "steps-TOTAL_FORMS": "2",
        "steps-INITIAL_FORMS": "2",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for index, (step, role_id) in enumerate([(first, first.role_id), (second, admins.pk)]):
        form.update(
            {
                f"steps-{index}-step_id": str(step.pk),
                f"steps-{index}-workflow": str(deployed.pk),
                f"steps-{index}-order": str(step.order),
                f"steps-{index}-name": step.name,
                f"steps-{index}-role": str(role_id),
                f"steps-{index}-assignment_strategy": "round_robin",
                f"steps-{index}-completion_policy": "manual",
            }
        )

    response = client.post(f"/admin/workflow/workflows/{deployed.pk}/change/", form)

    assert response.status_code == 302
    assert [step.role.name for step in Workflows.objects.get(pk=deployed.pk).steps.all()] == [ROLE, "Admins"]
    assert Steps.all_objects.get(pk=second.pk).retired_at is not None
    assert Steps.all_objects.get(pk=first.pk).retired_at is None  # unchanged: shared by both versions
    assert Workflows.objects.get(pk=deployed.pk).live_version.number == 2
    assert step_roles(in_flight) == [ROLE, "Manager"]


def test_a_versioned_workflow_without_tasks_can_still_be_deleted_and_one_with_tasks_cannot(
    api_client, deployed
):
    other = make_workflow(name="Other", category="Other", steps=[deployed.steps.get(order=1).role])
    api_client.patch(f"{WORKFLOWS}{other.pk}/", {"low_sla": "09:00:00"}, format="json")
    new_task("TX-K1")

    assert api_client.delete(f"{WORKFLOWS}{other.pk}/").status_code == 204
    assert api_client.delete(f"{WORKFLOWS}{deployed.pk}/").status_code == 409
    assert not Workflows.objects.filter(pk=other.pk).exists()
