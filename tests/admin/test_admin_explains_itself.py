"""The admin says what configuration means, and warns (without refusing) about what will not work."""

import pytest
import requests

from conftest import make_workflow
from task import services as task_services
from tickets.models import WorkflowTicket
from workflow.models import Roles, Workflows

pytestmark = pytest.mark.django_db


def _workflow_form(role: Roles, **fields) -> dict:
    form = {
        "name": "Printers",
        "description": "",
        "department": "IT Department",
        "category": "IT Support",
        "sub_category": "",
        "status": "deployed",
        "end_logic": "",
        "default_priority": "medium",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-order": "1",
        "steps-0-name": "Triage",
        "steps-0-role": str(role.pk),
        "steps-0-assignment_strategy": "round_robin",
        "steps-0-max_assignees": "",
    }
    form.update(fields)
    return form


def _warnings(response) -> list[str]:
    return [str(message) for message in response.context["messages"] if message.level_tag == "warning"]


def test_the_workflow_form_explains_matching_and_going_live(superuser_client):
    content = superuser_client.get("/admin/workflow/workflows/add/").content.decode()

    assert "the catch-all of its department and category" in content
    assert "Matched exactly against the ticket's department" in content
    assert "only when it is both published and deployed" in content
    assert "workflow/step_order.js" in content


def test_the_role_form_says_the_name_must_equal_tts(superuser_client):
    content = superuser_client.get("/admin/workflow/roles/add/").content.decode()

    assert "Must equal the role's name in TTS exactly" in content


def test_saving_a_deployed_but_unpublished_workflow_warns_and_saves(superuser_client, role):
    response = superuser_client.post("/admin/workflow/workflows/add/", _workflow_form(role), follow=True)

    assert Workflows.objects.get().name == "Printers"
    assert any("deployed but not published" in warning for warning in _warnings(response))


def test_saving_a_second_live_workflow_on_the_same_route_warns_which_one_wins(superuser_client, role):
    older = make_workflow(name="Older", steps=[role])

    response = superuser_client.post(
        "/admin/workflow/workflows/add/", _workflow_form(role, is_published="on"), follow=True
    )

    (warning,) = _warnings(response)
    assert "same route as live workflow(s) 'Older'" in warning
    assert "the oldest of them" in warning
    assert Workflows.objects.count() == 2 and older.pk < Workflows.objects.get(name="Printers").pk


def test_a_live_workflow_alone_on_its_route_saves_without_warning(superuser_client, role):
    response = superuser_client.post(
        "/admin/workflow/workflows/add/", _workflow_form(role, is_published="on"), follow=True
    )

    assert _warnings(response) == []


def test_saving_a_role_tts_lists_no_users_for_warns_about_the_exact_name(superuser_client, tts):
    tts.role("admin", [])

    response = superuser_client.post(
        "/admin/workflow/roles/add/", {"name": "admin", "description": ""}, follow=True
    )

    (warning,) = _warnings(response)
    assert "TTS lists no users for role 'admin'" in warning
    assert "capitals count" in warning
    assert Roles.objects.filter(name="admin").exists()


def test_saving_a_role_while_tts_is_down_saves_and_says_it_could_not_check(superuser_client, tts):
    tts.fail("Admin", body=requests.ConnectTimeout())

    response = superuser_client.post(
        "/admin/workflow/roles/add/", {"name": "Admin", "description": ""}, follow=True
    )

    assert "Could not check role 'Admin' with TTS" in _warnings(response)[0]
    assert Roles.objects.filter(name="Admin").exists()


def test_a_role_tts_knows_saves_without_warning(superuser_client, tts):
    tts.role("Admin", [1, 2])

    response = superuser_client.post(
        "/admin/workflow/roles/add/", {"name": "Admin", "description": ""}, follow=True
    )

    assert _warnings(response) == []


def test_the_workflow_list_shows_whether_each_is_live_and_its_step_count(superuser_client, role):
    make_workflow(name="Live one", steps=[role, role])
    make_workflow(name="Draft one", category="Other", status=Workflows.Status.DRAFT)

    response = superuser_client.get("/admin/workflow/workflows/")

    changelist = response.context["cl"]
    shown = {
        workflow.name: (changelist.model_admin.live(workflow), changelist.model_admin.step_count(workflow))
        for workflow in changelist.result_list
    }
    assert shown == {"Live one": (True, 2), "Draft one": (False, 0)}


def test_the_task_page_links_the_ticket_and_shows_assignees_step_and_history(superuser_client, role, tts):
    tts.role(role.name, [3, 6])
    workflow = make_workflow(steps=[role])
    ticket = WorkflowTicket.objects.create(
        ticket_number="TX-9", subject="Printer", department="IT Department", category="IT Support"
    )
    task, _ = task_services.task_create_for_ticket(ticket_id=ticket.pk)

    task_page = superuser_client.get(f"/admin/task/task/{task.pk}/change/").content.decode()
    ticket_page = superuser_client.get(f"/admin/tickets/workflowticket/{ticket.pk}/change/").content.decode()

    assert f'href="/admin/tickets/workflowticket/{ticket.pk}/change/">TX-9</a>' in task_page
    assert f'href="/admin/workflow/workflows/{workflow.pk}/change/">{workflow.name}</a>' in task_page
    assert "1. Step 1 (role IT Support Technician; step 1 of 1 by order)" in task_page
    assert "<td>3</td><td>IT Support Technician</td><td>Assigned</td>" in task_page
    assert "History (oldest first)" in task_page
    assert "<summary>chose 3, 6 by round_robin among 2 listed" in task_page
    assert f"/admin/task/task/{task.pk}/reassign/" in task_page
    assert f'href="/admin/task/task/{task.pk}/change/">task {task.pk}</a>' in ticket_page
