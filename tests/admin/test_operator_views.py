"""What operators look at: where a ticket would go, who is loaded in a role, which tickets wait and why."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import client_as, make_workflow
from task import services as task_services
from tickets.models import WorkflowTicket
from workflow.models import Roles, Workflows

pytestmark = pytest.mark.django_db

MATCH = "/workflow/api/workflows/match/"


@pytest.fixture
def routes(role) -> dict[str, Workflows]:
    return {
        "catch_all": make_workflow(name="Catch-all", steps=[role]),
        "vpn": make_workflow(name="VPN", sub_category="VPN", steps=[role]),
        "unpublished": make_workflow(name="Unpublished", sub_category="Printers", is_published=False),
    }


@pytest.mark.parametrize(
    ("query", "kind", "name"),
    [
        ({"department": "IT Department", "category": "IT Support", "sub_category": "VPN"}, "exact", "VPN"),
        ({"department": "IT Department", "category": "IT Support", "sub_category": ""}, "exact", "Catch-all"),
        (
            {"department": "IT Department", "category": "IT Support", "sub_category": "Printers"},
            "fallback",
            "Catch-all",
        ),
        ({"department": "it department", "category": "IT Support", "sub_category": "VPN"}, "none", None),
        ({}, "none", None),
    ],
)
def test_match_answers_the_workflow_a_ticket_would_get_and_how(api_client, routes, query, kind, name):
    response = api_client.get(MATCH, query)

    assert response.status_code == 200
    body = response.json()
    assert body["match"] == kind
    assert (body["workflow"] or {}).get("name") == name


def test_match_shows_the_workflow_as_the_workflow_api_does(api_client, routes):
    matched = api_client.get(
        MATCH, {"department": "IT Department", "category": "IT Support", "sub_category": "VPN"}
    )
    detail = api_client.get(f"/workflow/api/workflows/{routes['vpn'].pk}/")

    assert matched.json()["workflow"] == detail.json()


def test_match_without_a_specific_catch_all_falls_back_to_the_oldest_specific(api_client, role):
    oldest = make_workflow(name="Printers", sub_category="Printers", steps=[role])
    make_workflow(name="Scanners", sub_category="Scanners", steps=[role])

    body = api_client.get(MATCH, {"department": "IT Department", "category": "IT Support"}).json()

    assert (body["match"], body["workflow"]["workflow_id"]) == ("fallback", oldest.pk)


def test_match_is_for_staff_only(routes):
    assert client_as(5).get(MATCH, {"department": "IT Department"}).status_code == 403


def test_routing_tester_page_says_which_workflow_and_why(superuser_client, routes):
    page = superuser_client.get(
        "/admin/workflow/workflows/routing-tester/",
        {"department": "IT Department", "category": "IT Support", "sub_category": "Printers"},
    ).content.decode()
    nothing = superuser_client.get(
        "/admin/workflow/workflows/routing-tester/", {"department": "HR", "category": "IT Support"}
    ).content.decode()

    assert "Match: fallback" in page
    assert "catch-all (blank sub category)" in page
    assert f'/admin/workflow/workflows/{routes["catch_all"].pk}/change/">Catch-all</a>' in page
    assert "First step: 1. Step 1, role IT Support Technician" in page
    assert "Match: none" in nothing
    assert "no_workflow" in nothing


def test_workload_page_shows_open_work_availability_and_who_is_next(superuser_client, role, tts):
    tts.role(role.name, [3, 6, 7])
    make_workflow(steps=[role])
    ticket = WorkflowTicket.objects.create(
        ticket_number="TX-1", subject="s", department="IT Department", category="IT Support"
    )
    task_services.task_create_for_ticket(ticket_id=ticket.pk)
    task_services.availability_set(user_id=7, actor="system", status="unavailable")

    page = superuser_client.get(f"/admin/workflow/roles/{role.pk}/workload/").content.decode()

    assert ">3</a></td>\n        <td>1</td>\n        <td>1</td>\n        <td>available</td>" in page
    assert ">7</a></td>\n        <td>1</td>\n        <td>1</td>\n        <td>unavailable</td>" in page
    # Round robin over [3, 6, 7] with 3 assignees, 7 unavailable: 3 and 6 every time.
    assert "[3, 6], [3, 6], [3, 6], [3, 6], [3, 6]" in page


def test_workload_page_with_tts_down_still_shows_who_holds_work(superuser_client, role, tts):
    tts.role(role.name, [3])
    make_workflow(steps=[role])
    ticket = WorkflowTicket.objects.create(
        ticket_number="TX-1", subject="s", department="IT Department", category="IT Support"
    )
    task_services.task_create_for_ticket(ticket_id=ticket.pk)
    tts.mock.reset()
    tts.fail(role.name, status=503)

    response = superuser_client.get(f"/admin/workflow/roles/{role.pk}/workload/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "TTS did not answer" in page
    assert ">3</a></td>\n        <td>1</td>" in page
    assert "no (still holds open work)" in page


def test_unallocated_page_groups_tickets_by_reason_with_the_oldest_age(superuser_client):
    now = timezone.now()
    for number, error, age in [
        ("A", "no_workflow", timedelta(hours=3)),
        ("B", "no_workflow", timedelta(minutes=5)),
        ("C", "tts_unavailable", timedelta(minutes=10)),
    ]:
        ticket = WorkflowTicket.objects.create(ticket_number=number, subject="s", allocation_error=error)
        WorkflowTicket.objects.filter(pk=ticket.pk).update(created_at=now - age)
    WorkflowTicket.objects.create(ticket_number="D", subject="s", is_task_allocated=True)

    response = superuser_client.get("/admin/tickets/workflowticket/unallocated/")

    page = response.content.decode()
    reasons = [(entry["reason"], entry["count"]) for entry in response.context["reasons"]]
    assert reasons == [("no_workflow", 2), ("tts_unavailable", 1)]
    assert "3 ticket(s) without a task" in page
    assert "3\xa0hours" in page
    assert "allocation_error__exact=no_workflow" in page


def test_operator_pages_are_linked_from_their_lists(superuser_client, role):
    assert "routing-tester/" in superuser_client.get("/admin/workflow/workflows/").content.decode()
    assert "unallocated/" in superuser_client.get("/admin/tickets/workflowticket/").content.decode()
    assert (
        f"/admin/workflow/roles/{role.pk}/workload/"
        in superuser_client.get("/admin/workflow/roles/").content.decode()
    )


def test_an_unknown_role_workload_page_is_a_404(superuser_client, db):
    assert (
        superuser_client.get(f"/admin/workflow/roles/{Roles.objects.count() + 999}/workload/").status_code
        == 404
    )
