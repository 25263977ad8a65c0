"""Every admin page of every registered model, walked as an administrator would: never a 500."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User

from conftest import client_as, make_workflow
from task import services as task_services
from task.models import Task
from tests.admin.forms import unchanged_form_data
from tickets import services as ticket_services
from tickets.models import WorkflowTicket
from workflow.models import Roles

pytestmark = pytest.mark.django_db

MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.fixture
def world(tts) -> dict:
    """One row of every kind admin shows, written the way the service writes them."""
    role = Roles.objects.create(name="IT Support Technician")
    second = Roles.objects.create(name="IT Lead")
    workflow = make_workflow(steps=[role, second])
    tts.role(role.name, [3, 6, 7])
    tts.role(second.name, [8])
    allocated = WorkflowTicket.objects.create(
        ticket_number="TX-ALLOCATED", subject="Printer", department="IT Department", category="IT Support"
    )
    task, _ = task_services.task_create_for_ticket(ticket_id=allocated.pk)
    WorkflowTicket.objects.create(
        ticket_number="TX-WAITING",
        subject="Nobody",
        department="Nowhere",
        allocation_error=WorkflowTicket.AllocationError.NO_WORKFLOW,
    )
    task_services.availability_set(user_id=6, actor="system", status="away")
    ticket_services.message_record_redelivery(
        message_id="m-1", task_name="tickets.tasks.receive_ticket", ticket_number="TX-ALLOCATED"
    )
    User.objects.create_user("someone", "someone@example.com", "pw-someone-123")
    Group.objects.create(name="operators")
    return {"task": task, "workflow": workflow}


def _check(response, page: str) -> None:
    assert response.status_code < 500, f"{page} answered {response.status_code}"


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_admin_pages_of_every_model_answer_without_a_server_error(model, world, superuser_client):
    opts = model._meta
    base = f"/admin/{opts.app_label}/{opts.model_name}/"
    form_id = f"{opts.model_name}_form"

    _check(superuser_client.get(base), f"{opts.label} list")
    _check(superuser_client.get(base, {"q": "x' OR 1=1 --"}), f"{opts.label} search")

    add = superuser_client.get(f"{base}add/")
    _check(add, f"{opts.label} add")
    if add.status_code == 200:
        # An untouched add form, twice: refused with errors or saved, never a 500.
        for attempt in (1, 2):
            data = unchanged_form_data(add.content.decode(), form_id)
            _check(superuser_client.post(f"{base}add/", data), f"{opts.label} add, POST {attempt}")

    for obj in model._default_manager.all()[:3]:
        page = f"{base}{obj.pk}/change/"
        change = superuser_client.get(page)
        _check(change, f"{opts.label} {obj.pk} change")
        html = change.content.decode()
        if f'id="{form_id}"' in html and 'name="_save"' in html:
            saved = superuser_client.post(page, {**unchanged_form_data(html, form_id), "_save": "Save"})
            _check(saved, f"{opts.label} {obj.pk} change, POST")
            assert saved.status_code == 302, (
                f"{opts.label} {obj.pk}: the unchanged form was refused: {saved.context['errors']}"
            )
        _check(superuser_client.get(f"{base}{obj.pk}/history/"), f"{opts.label} {obj.pk} history")
        _check(superuser_client.get(f"{base}{obj.pk}/delete/"), f"{opts.label} {obj.pk} delete")

    for obj in model._default_manager.all()[:1]:
        _check(
            superuser_client.post(f"{base}{obj.pk}/delete/", {"post": "yes"}),
            f"{opts.label} {obj.pk} delete, POST",
        )

    # Whatever admin did, the API still answers the task's assignees.
    for assignee in Task.objects.get(pk=world["task"].pk).get_assigned_user_ids():
        response = client_as(assignee).get("/tasks/api/tasks/")
        assert response.status_code == 200, (
            f"after {opts.label}'s pages, the task list answered {response.status_code}"
        )


def test_system_rows_have_no_add_page(superuser_client):
    for path in (
        "/admin/tickets/workflowticket/add/",
        "/admin/tickets/redeliveredmessage/add/",
        "/admin/task/roundrobinstate/add/",
        "/admin/task/task/add/",
        "/admin/task/availabilitychange/add/",
    ):
        assert superuser_client.get(path).status_code == 403, path
