import pytest
from django.contrib.auth.models import User

from conftest import make_workflow
from task.models import Task
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123"))
    return client


@pytest.fixture
def failed_ticket() -> WorkflowTicket:
    return WorkflowTicket.objects.create(
        ticket_number="TX-FAILED",
        subject="Nobody to do it",
        department="IT Department",
        category="IT Support",
        ticket_data={"ticket_id": "TX-FAILED", "employee": {"company_id": "MA0042"}},
        allocation_error=WorkflowTicket.AllocationError.NO_WORKFLOW,
        allocation_error_detail="No deployed workflow for 'IT Department'",
        allocation_attempts=1,
    )


def test_ticket_list_filters_by_allocation_and_shows_the_failure_reason(admin_client, failed_ticket):
    WorkflowTicket.objects.create(ticket_number="TX-OK", subject="Fine", is_task_allocated=True)

    response = admin_client.get("/admin/tickets/workflowticket/", {"is_task_allocated__exact": "0"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "TX-FAILED" in content
    assert "TX-OK" not in content
    assert "No matching workflow: No deployed workflow" in content


def test_ticket_page_shows_the_raw_payload(admin_client, failed_ticket):
    response = admin_client.get(f"/admin/tickets/workflowticket/{failed_ticket.pk}/change/")

    assert response.status_code == 200
    assert "MA0042" in response.content.decode()


def test_retry_allocation_action_allocates_once_the_cause_is_fixed(
    admin_client, failed_ticket, role, tts, django_capture_on_commit_callbacks
):
    make_workflow(steps=[role])
    tts.role(role.name, [3, 6])

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/tickets/workflowticket/",
            {"action": "retry_allocation", "_selected_action": [failed_ticket.pk]},
        )

    assert response.status_code == 302
    failed_ticket.refresh_from_db()
    assert failed_ticket.is_task_allocated
    assert failed_ticket.allocation_failure_reason == ""
    assert Task.objects.get().get_assigned_user_ids() == [3, 6]


def test_task_admin_lists_status_ticket_workflow_and_step(admin_client, workflow):
    ticket = WorkflowTicket.objects.create(ticket_number="TX-T", subject="s", is_task_allocated=True)
    Task.objects.create(ticket=ticket, workflow=workflow, current_step=workflow.steps.get())

    response = admin_client.get("/admin/task/task/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "TX-T" in content
    assert workflow.name in content
