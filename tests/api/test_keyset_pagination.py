"""Task and ticket lists page by cursor: `next` walks every row once, `count` stays cheap on big tables."""

from datetime import UTC, datetime
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from django.core.management import call_command
from django.db import connection

from tests.api.conftest import ASSIGNEE_ID, OTHER_USER_ID, assignment, make_task
from tickets.models import WorkflowTicket

TASKS = "/tasks/api/tasks/"
TICKETS = "/tickets/api/tickets/"


def _walk(client, path: str, params: dict) -> tuple[list[int], list[dict]]:
    """Every id reached by following `next` from the first page, and every page body."""
    body = client.get(path, params).json()
    pages = [body]
    while body["next"]:
        body = client.get(body["next"]).json()
        pages.append(body)
    key = "task_id" if path == TASKS else "id"
    return [row[key] for page in pages for row in page["results"]], pages


def _cursor(link: str) -> str:
    return parse_qs(urlsplit(link).query)["cursor"][0]


def test_following_next_reaches_every_task_once_newest_first_with_the_filter_kept(staff, agent_workflow):
    tasks = [make_task(agent_workflow, f"TX-{n}", [assignment(ASSIGNEE_ID)]) for n in range(7)]
    for task in tasks[::2]:
        task.update_user_status(ASSIGNEE_ID, "in_progress")

    every, pages = _walk(staff, TASKS, {"page_size": 3})
    started, _ = _walk(staff, TASKS, {"page_size": 2, "status": "in_progress"})

    assert every == sorted((task.pk for task in tasks), reverse=True)
    assert [len(page["results"]) for page in pages] == [3, 3, 1]
    assert pages[0]["previous"] is None and pages[-1]["next"] is None
    assert "page_size=3" in pages[1]["next"]
    assert started == sorted((task.pk for task in tasks[::2]), reverse=True)


def test_previous_goes_back_to_the_page_before(staff, agent_workflow):
    for n in range(5):
        make_task(agent_workflow, f"TX-{n}", [])
    first = staff.get(TASKS, {"page_size": 2}).json()
    second = staff.get(first["next"]).json()

    back = staff.get(second["previous"]).json()

    assert [row["task_id"] for row in back["results"]] == [row["task_id"] for row in first["results"]]
    assert back["previous"] is None
    assert back["next"] is not None


def test_a_callers_own_tasks_page_by_cursor_too(client_for, agent_workflow):
    mine = [make_task(agent_workflow, f"TX-M{n}", [assignment(ASSIGNEE_ID)]) for n in range(4)]
    for n in range(4):
        make_task(agent_workflow, f"TX-O{n}", [assignment(OTHER_USER_ID)])

    seen, pages = _walk(client_for(ASSIGNEE_ID), TASKS, {"page_size": 3})

    assert seen == sorted((task.pk for task in mine), reverse=True)
    assert pages[0]["count"] == 4


def test_tickets_created_at_the_same_moment_are_each_listed_once(staff, db):
    WorkflowTicket.objects.bulk_create(
        [WorkflowTicket(ticket_number=f"TX-{n}", subject="s") for n in range(6)]
    )
    WorkflowTicket.objects.update(created_at=datetime(2025, 11, 10, 8, 15, tzinfo=UTC))
    WorkflowTicket.objects.create(ticket_number="TX-NEW", subject="s")

    seen, _ = _walk(staff, TICKETS, {"page_size": 4})

    newest = WorkflowTicket.objects.get(ticket_number="TX-NEW").pk
    same_moment = sorted(WorkflowTicket.objects.exclude(pk=newest).values_list("pk", flat=True), reverse=True)
    assert seen == [newest, *same_moment]


def test_page_numbers_work_for_early_pages_and_point_to_next_links_beyond(staff, settings, db):
    settings.API_MAX_OFFSET_ROWS = 6
    WorkflowTicket.objects.bulk_create(
        [WorkflowTicket(ticket_number=f"TX-{n}", subject="s") for n in range(10)]
    )

    second = staff.get(TICKETS, {"page": 2, "page_size": 3})
    too_deep = staff.get(TICKETS, {"page": 3, "page_size": 3})
    onwards = staff.get(second.json()["next"])

    assert second.status_code == 200 and len(second.json()["results"]) == 3
    assert too_deep.status_code == 400
    assert "next" in too_deep.json()["page"][0]
    assert len(onwards.json()["results"]) == 3
    assert not {t["id"] for t in onwards.json()["results"]} & {t["id"] for t in second.json()["results"]}


@pytest.mark.parametrize("cursor", ["nonsense", "WyJuIiwgWyJ4Il1d", "WyJ6IiwgWzFdXQ", "WyJuIiwgW251bGxdXQ"])
def test_a_cursor_not_made_by_the_service_is_a_400(staff, db, cursor):
    response = staff.get(TASKS, {"cursor": cursor})

    assert response.status_code == 400
    assert "cursor" in response.json()


def test_count_is_exact_up_to_the_limit(staff, settings, agent_workflow):
    settings.API_EXACT_COUNT_LIMIT = 5
    for n in range(5):
        make_task(agent_workflow, f"TX-{n}", [])

    assert staff.get(TASKS).json()["count"] == 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts are kept on PostgreSQL")
def test_staff_counts_by_status_and_workflow_stay_exact_above_the_limit(staff, settings, agent_workflow):
    settings.API_EXACT_COUNT_LIMIT = 5
    tasks = [make_task(agent_workflow, f"TX-{n}", [assignment(ASSIGNEE_ID)]) for n in range(8)]
    for task in tasks[:6]:
        task.update_user_status(ASSIGNEE_ID, "in_progress")

    assert staff.get(TASKS, {"page_size": 3}).json()["count"] == 8
    assert staff.get(TASKS, {"status": "in_progress"}).json()["count"] == 6
    assert staff.get(TASKS, {"workflow_id": agent_workflow.pk, "status": "pending"}).json()["count"] == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="estimates come from PostgreSQL's planner")
def test_count_above_the_limit_is_an_estimate_and_never_below_the_limit(client_for, settings, agent_workflow):
    settings.API_EXACT_COUNT_LIMIT = 5
    for n in range(8):
        make_task(agent_workflow, f"TX-{n}", [assignment(ASSIGNEE_ID)])

    body = client_for(ASSIGNEE_ID).get(TASKS, {"page_size": 3, "status": "pending"}).json()

    assert body["count"] > 5
    assert len(body["results"]) == 3 and body["next"]


def test_the_schema_documents_the_cursor_and_the_estimated_count(db):
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())

    operation = schema["paths"][TASKS]["get"]
    assert "cursor" in {parameter["name"] for parameter in operation["parameters"]}
    page_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].split("/")[
        -1
    ]
    count = schema["components"]["schemas"][page_schema]["properties"]["count"]
    assert "estimate" in count["description"]
