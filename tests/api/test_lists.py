"""Lists are paginated and filtered, and cost the same number of queries whatever their length."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import ASSIGNEE_ID, assignment, make_task
from tickets.models import WorkflowTicket
from workflow.models import Roles, Steps
from workflow_api.authentication import mint_token

TASKS = "/tasks/api/tasks/"


def _tasks(workflow, count: int) -> list:
    return [
        make_task(workflow, f"TX-{n:04d}", [assignment(ASSIGNEE_ID), assignment(6)]) for n in range(count)
    ]


def _queries(client, path: str) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, {"page_size": 200})
    assert response.status_code == 200
    return len(queries), response


@pytest.mark.parametrize("caller", ["staff", "assignee"])
def test_task_list_query_count_does_not_grow_with_the_number_of_tasks(request, agent_workflow, caller):
    client = request.getfixturevalue(caller)
    _tasks(agent_workflow, 1)
    with_one, response = _queries(client, TASKS)
    assert response.json()["count"] == 1

    for n in range(199):
        make_task(agent_workflow, f"TX-B{n:04d}", [assignment(ASSIGNEE_ID)])
    with_two_hundred, response = _queries(client, TASKS)

    assert len(response.json()["results"]) == 200
    assert with_one == with_two_hundred


def test_task_retrieve_query_count_is_constant(staff, agent_workflow):
    small = make_task(agent_workflow, "TX-SMALL", [assignment(ASSIGNEE_ID)])
    big = make_task(agent_workflow, "TX-BIG", [assignment(user_id) for user_id in range(1, 201)])

    small_count, _ = _queries(staff, f"{TASKS}{small.pk}/")
    big_count, _ = _queries(staff, f"{TASKS}{big.pk}/")

    assert small_count == big_count


def test_ticket_list_query_count_is_constant(staff, db):
    WorkflowTicket.objects.create(ticket_number="TX-0", subject="s")
    with_one, _ = _queries(staff, "/tickets/api/tickets/")
    WorkflowTicket.objects.bulk_create(
        [WorkflowTicket(ticket_number=f"TX-{n}", subject="s") for n in range(1, 200)]
    )
    with_two_hundred, response = _queries(staff, "/tickets/api/tickets/")

    assert response.json()["count"] == 200
    assert with_one == with_two_hundred


def test_workflow_list_query_count_is_constant_with_nested_steps(staff, agent_workflow):
    from conftest import make_workflow

    workflows_with_one, _ = _queries(staff, "/workflow/api/workflows/")
    steps_with_one, _ = _queries(staff, "/workflow/api/steps/")
    roles = [Roles.objects.create(name=f"Role {n}") for n in range(3)]
    for n in range(199):
        make_workflow(name=f"Workflow {n}", steps=roles)
    workflows_with_many, workflows = _queries(staff, "/workflow/api/workflows/")
    steps_with_many, steps = _queries(staff, "/workflow/api/steps/")

    assert workflows.json()["count"] == 200
    assert len(workflows.json()["results"][-1]["steps"]) == 3
    assert steps.json()["count"] == Steps.objects.count() == 1 + 199 * 3
    assert workflows_with_one == workflows_with_many
    assert steps_with_one == steps_with_many


def test_lists_are_paginated_with_a_default_and_a_maximum_page_size(staff, settings, db):
    settings.API_PAGE_SIZE = 5
    settings.API_MAX_PAGE_SIZE = 20
    WorkflowTicket.objects.bulk_create(
        [WorkflowTicket(ticket_number=f"TX-{n}", subject="s") for n in range(30)]
    )

    default = staff.get("/tickets/api/tickets/").json()
    capped = staff.get("/tickets/api/tickets/", {"page_size": 1000}).json()
    second = staff.get("/tickets/api/tickets/", {"page": 2}).json()

    assert (default["count"], len(default["results"])) == (30, 5)
    assert default["next"] is not None
    assert len(capped["results"]) == 20
    assert {t["id"] for t in second["results"]}.isdisjoint({t["id"] for t in default["results"]})
    assert staff.get("/tickets/api/tickets/", {"page": 99}).status_code == 404


def test_page_size_query_param_works_for_tasks(client_for, agent_workflow):
    _tasks(agent_workflow, 3)
    client = client_for(1, staff=True)

    body = client.get(TASKS, {"page_size": 2}).json()

    assert (body["count"], len(body["results"])) == (3, 2)


def test_roles_list_is_filtered_with_django_filter(staff, db):
    Roles.objects.create(name="Manager")
    Roles.objects.create(name="Agent")

    body = staff.get("/workflow/api/roles/", {"name": "Agent"}).json()

    assert [role["name"] for role in body["results"]] == ["Agent"]


def test_token_authentication_itself_makes_no_query(agent_workflow):
    """The token is the identity: no user lookup is added to every request."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {mint_token(user_id=1, is_staff=True)}")
    with CaptureQueriesContext(connection) as queries:
        client.get(f"{TASKS}workflow_statistics/")

    assert len(queries) == 1  # the statistics query itself


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "null", "1.5"])
def test_a_meaningless_page_size_is_400_not_silently_the_default(staff, db, page_size):
    response = staff.get(TASKS, {"page_size": page_size})

    assert response.status_code == 400
    assert "page_size" in response.json()


@pytest.mark.parametrize("ticket_id", ["-3.26e+164", "9" * 30, "0", "1.5", "abc"])
def test_out_of_range_or_malformed_id_filters_are_400_not_500(staff, assigned_task, ticket_id):
    response = staff.get(TASKS, {"ticket_id": ticket_id})

    assert response.status_code == 400
    assert "ticket_id" in response.json()


@pytest.mark.parametrize("value", ["null", "ture", "yes"])
def test_a_malformed_boolean_filter_is_400_not_ignored(staff, db, value):
    response = staff.get("/workflow/api/workflows/", {"is_published": value})

    assert response.status_code == 400
    assert "is_published" in response.json()


def test_boolean_filters_accept_true_and_false(staff, agent_workflow):
    published = staff.get("/workflow/api/workflows/", {"is_published": "true"}).json()
    unpublished = staff.get("/workflow/api/workflows/", {"is_published": "false"}).json()

    assert (published["count"], unpublished["count"]) == (1, 0)


def test_an_empty_filter_value_means_no_filter(staff, assigned_task):
    response = staff.get(TASKS, {"status": "", "ticket_id": "", "page": "", "page_size": ""})

    assert response.json()["count"] == 1
