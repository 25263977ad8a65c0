"""A first delivery of a new ticket on a worker: TTS first, then the ticket and its task in one statement."""

import re

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import make_workflow, ticket_payload
from task import services as task_services
from task.models import RoundRobinState, Task
from tickets import tasks
from tickets.models import WorkflowTicket
from workflow.models import Roles, Steps, Workflows

# Outside any transaction, as on a worker: receive_ticket takes the one-statement path there.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="a new ticket and its task are stored in one statement on PostgreSQL only "
        "(task.services.can_create_with_new_ticket); CI runs these on PostgreSQL",
    ),
]

Reason = WorkflowTicket.AllocationError
# What differs between two tickets whatever path stored them: their identity, content and clock.
PER_TICKET_FIELDS = {
    "id",
    "ticket_number",
    "original_ticket_id",
    "ticket_data",
    "created_at",
    "updated_at",
    "last_allocation_attempt_at",
}


def _deliver(payload: dict, *, message_id: str, redelivered: bool = False) -> dict:
    """Run receive_ticket as a worker does for a message the broker flagged (or not) as redelivered."""
    tasks.receive_ticket.push_request(id=message_id, delivery_info={"redelivered": redelivered})
    try:
        return tasks.receive_ticket.run(payload)
    finally:
        tasks.receive_ticket.pop_request()


def _routing() -> dict:
    payload = ticket_payload()
    return {key: payload[key] for key in ("department", "category", "sub_category")}


def _assigned(ticket_number: str) -> list[int]:
    return Task.objects.get(ticket__ticket_number=ticket_number).get_assigned_user_ids()


@pytest.fixture
def one_statement_path(monkeypatch) -> list:
    """Records what each call of the one-statement path returned: (ticket id, task), or None."""
    outcomes = []
    create = task_services.task_create_with_new_ticket

    def recording(**kwargs):
        outcomes.append(create(**kwargs))
        return outcomes[-1]

    monkeypatch.setattr(task_services, "task_create_with_new_ticket", recording)
    return outcomes


def test_a_new_ticket_is_stored_with_its_task_as_the_store_first_path_stores_them(
    tts, role, upstream_payload, one_statement_path
):
    workflow = make_workflow(sub_category=upstream_payload["subcategory"], steps=[role])
    tts.role(role.name, [3, 6, 7])
    by_store_first = {**upstream_payload, "id": 43, "ticket_id": "TX20251110000043"}

    fast = _deliver(upstream_payload, message_id="m-fast")
    slow = _deliver(by_store_first, message_id="m-slow", redelivered=True)

    assert fast["action"] == slow["action"] == "created"
    assert len(one_statement_path) == 1  # the redelivery stored its ticket first
    fast_ticket = WorkflowTicket.objects.get(pk=fast["ticket_id"])
    slow_ticket = WorkflowTicket.objects.get(pk=slow["ticket_id"])
    assert fast_ticket.ticket_number == "TX20251110000042"
    assert fast_ticket.original_ticket_id == 42
    assert fast_ticket.ticket_data == upstream_payload
    assert fast_ticket.is_task_allocated
    assert fast_ticket.allocation_attempts == 1
    assert fast_ticket.last_allocation_attempt_at is not None
    stored_alike = [f.name for f in WorkflowTicket._meta.concrete_fields if f.name not in PER_TICKET_FIELDS]
    assert {name: getattr(fast_ticket, name) for name in stored_alike} == {
        name: getattr(slow_ticket, name) for name in stored_alike
    }

    fast_task = Task.objects.get(ticket=fast_ticket)
    slow_task = Task.objects.get(ticket=slow_ticket)
    assert fast_task.workflow == slow_task.workflow == workflow
    assert fast_task.current_step == slow_task.current_step == workflow.steps.get(order=1)
    assert fast_task.status == slow_task.status == Task.Status.PENDING
    assert fast_task.fetched_at is None
    assert [{key: u[key] for key in ("userID", "status", "role")} for u in fast_task.users] == [
        {"userID": user_id, "status": "assigned", "role": role.name} for user_id in (3, 6, 7)
    ]
    assert [set(u) for u in fast_task.users] == [set(u) for u in slow_task.users]
    # Every other column alike too: a field added to Task must be written by both paths.
    per_task = {"task_id", "ticket", "users", "created_at", "updated_at", "step_entered_at"}
    alike = [f.attname for f in Task._meta.concrete_fields if f.name not in per_task]
    assert {name: getattr(fast_task, name) for name in alike} == {
        name: getattr(slow_task, name) for name in alike
    }
    for user in fast_task.users:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", user["assigned_on"])
    # The task the service hands back is the one stored.
    (_ticket_id, returned_task) = one_statement_path[0]
    assert returned_task.task_id == fast_task.task_id
    assert returned_task.users == fast_task.users


@pytest.mark.parametrize(
    ("max_assignments", "expected"),
    [
        (1, [[3], [6], [7], [3]]),  # the spec's example
        (2, [[3, 6], [7, 3], [6, 7], [3, 6]]),  # turns that wrap past the end of the list
    ],
)
def test_round_robin_continues_across_the_one_statement_and_the_store_first_paths(
    tts, workflow, role, settings, max_assignments, expected
):
    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = max_assignments
    tts.role(role.name, [3, 6, 7])
    # As if its first delivery died between storing it and allocating it.
    WorkflowTicket.objects.create(ticket_number="TX-4", subject="Stored, never allocated", **_routing())

    _deliver(ticket_payload("TX-1"), message_id="m-1")
    _deliver(ticket_payload("TX-2"), message_id="m-2", redelivered=True)
    _deliver(ticket_payload("TX-3"), message_id="m-3")
    fourth = _deliver(ticket_payload("TX-4"), message_id="m-4")

    assert fourth["action"] == "updated"
    assert [_assigned(number) for number in ("TX-1", "TX-2", "TX-3", "TX-4")] == expected


def test_after_a_longer_user_list_the_one_statement_path_wraps_the_cursor_as_the_store_first_path_does(
    tts, workflow, role, settings
):
    tts.role(role.name, list(range(1, 11)))
    tts.role(role.name, [3, 6, 7])
    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = 8
    _deliver(ticket_payload("TX-1"), message_id="m-1", redelivered=True)

    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = 1
    _deliver(ticket_payload("TX-2"), message_id="m-2")

    assert _assigned("TX-1") == [1, 2, 3, 4, 5, 6, 7, 8]
    # The cursor stands at 8; with three users it continues at 8 % 3 == 2.
    assert _assigned("TX-2") == [7]


def test_a_new_ticket_on_a_warm_route_costs_one_read_and_one_insert(tts, workflow, role):
    tts.role(role.name, [3, 6, 7])
    _deliver(ticket_payload("TX-1"), message_id="m-1")  # routes the category: cached from now on

    with CaptureQueriesContext(connection) as queries:
        result = _deliver(ticket_payload("TX-2"), message_id="m-2")

    assert result["action"] == "created"
    assert _assigned("TX-2") == [3, 6, 7]
    statements = [query["sql"] for query in queries.captured_queries]
    # One transaction, two statements: the route cache is warm, so no routing lookup.
    # 1. the role's rotation, locked until commit (decisions in a role queue here),
    #    its candidates' availability and loads, and whether the number is stored;
    # 2. WITH turn AS (...), ticket AS (...), task AS (...), ... INSERT the decision's record.
    assert len(statements) == 4, statements
    assert statements[0] == "BEGIN"
    assert statements[1].startswith("WITH rotation AS (") and "FOR UPDATE" in statements[1]
    assert statements[2].startswith("WITH turn AS (")
    assert statements[3] == "COMMIT"
    assert tts.calls == 2


def test_a_new_ticket_without_a_workflow_is_stored_with_its_first_attempt_and_the_reason(tts, db):
    result = _deliver(ticket_payload("TX-1", department="Facilities"), message_id="m-1")

    ticket = WorkflowTicket.objects.get()
    assert result == {
        "status": "success",
        "ticket_id": ticket.pk,
        "ticket_number": "TX-1",
        "action": "created",
    }
    assert not ticket.is_task_allocated
    assert ticket.allocation_attempts == 1
    assert ticket.allocation_error == Reason.NO_WORKFLOW
    assert "No deployed workflow" in ticket.allocation_failure_reason
    assert not Task.objects.exists()
    assert tts.calls == 0


def test_a_new_ticket_whose_workflow_has_no_steps_is_stored_with_that_reason(tts, db):
    make_workflow(steps=[])

    _deliver(ticket_payload("TX-1"), message_id="m-1")

    ticket = WorkflowTicket.objects.get()
    assert ticket.allocation_attempts == 1
    assert ticket.allocation_error == Reason.NO_STEPS
    assert not Task.objects.exists()


def test_a_new_ticket_is_stored_when_tts_answers_503_and_the_outage_recorded(tts, workflow, role, settings):
    settings.ALLOCATION_MAX_RETRIES = 0
    tts.role(role.name, [], status=503)

    result = _deliver(ticket_payload("TX-1"), message_id="m-1")

    ticket = WorkflowTicket.objects.get()
    assert result["action"] == "created"
    assert not ticket.is_task_allocated
    assert ticket.allocation_attempts == 1
    assert ticket.allocation_error == Reason.TTS_UNAVAILABLE
    assert "503" in ticket.allocation_error_detail
    assert not Task.objects.exists()
    assert not RoundRobinState.objects.exists()
    assert tts.calls == 1


def test_a_tts_outage_on_a_new_ticket_is_retried_within_its_first_attempt(tts, workflow, role, settings):
    settings.ALLOCATION_MAX_RETRIES = 2
    tts.role(role.name, [], status=503)

    _deliver(ticket_payload("TX-1"), message_id="m-1")

    ticket = WorkflowTicket.objects.get()
    assert tts.calls == 3  # the first try and two retries
    assert ticket.allocation_attempts == 1
    assert ticket.allocation_error == Reason.TTS_UNAVAILABLE
    assert "gave up after 2 retries" in ticket.allocation_error_detail


def test_a_new_ticket_gets_its_task_when_tts_recovers_on_the_retry(tts, workflow, role, settings):
    settings.ALLOCATION_MAX_RETRIES = 2
    tts.fail(role.name, body=requests.ConnectionError("refused"))
    tts.role(role.name, [3, 6, 7])

    result = _deliver(ticket_payload("TX-1"), message_id="m-1")

    ticket = WorkflowTicket.objects.get()
    assert result["action"] == "created"
    assert ticket.is_task_allocated
    assert ticket.allocation_attempts == 1
    assert ticket.allocation_error == Reason.NONE
    assert _assigned("TX-1") == [3, 6, 7]


def test_a_ticket_number_stored_meanwhile_is_updated_without_a_second_task_or_a_turn(
    tts, workflow, role, settings, monkeypatch, one_statement_path
):
    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = 1
    tts.role(role.name, [3, 6, 7])
    first = _deliver(ticket_payload("TX-1", status="Open"), message_id="m-1")

    again = _deliver(ticket_payload("TX-1", status="Closed"), message_id="m-2")

    assert one_statement_path[-1] is None  # the INSERT found the number taken and wrote nothing
    assert again == {**first, "action": "updated"}
    assert WorkflowTicket.objects.get().status == "Closed"
    assert Task.objects.count() == 1
    assert _assigned("TX-1") == [3]
    # The losing statement took no turn: the next ticket goes to the next user.
    _deliver(ticket_payload("TX-2"), message_id="m-3")
    assert _assigned("TX-2") == [6]


def test_a_delivery_that_fails_to_allocate_a_number_stored_meanwhile_leaves_the_ticket_to_the_other(
    tts, workflow, role, monkeypatch
):
    # The other delivery has stored TX-1, counted its attempt, and is allocating it.
    WorkflowTicket.objects.create(ticket_number="TX-1", subject="s", allocation_attempts=1, **_routing())
    tts.role(role.name, [], status=503)

    result = _deliver(ticket_payload("TX-1"), message_id="m-2")

    assert result["action"] == "updated"
    ticket = WorkflowTicket.objects.get()
    assert ticket.allocation_attempts == 1
    assert ticket.allocation_error == Reason.NONE
    assert tts.calls == 1  # no retry scheduled by the losing delivery


def test_routing_changed_between_planning_and_writing_puts_the_task_on_the_new_route(
    tts, workflow, role, settings, one_statement_path
):
    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = 1
    network = Roles.objects.create(name="Network Engineer")
    tts.role(role.name, [3, 6, 7])
    tts.role(network.name, [8])
    _deliver(ticket_payload("TX-1"), message_id="m-1")  # the route is cached from here on

    tts.role_after(role.name, [3, 6, 7], lambda: Steps.objects.filter(workflow=workflow).update(role=network))

    result = _deliver(ticket_payload("TX-2"), message_id="m-2")

    assert result["action"] == "created"
    ticket = WorkflowTicket.objects.get(ticket_number="TX-2")
    assert ticket.is_task_allocated
    task = Task.objects.get(ticket=ticket)
    assert [(user["userID"], user["role"]) for user in task.users] == [(8, network.name)]
    # Planned again and stored in one statement, not mistaken for a ticket number stored meanwhile.
    assert one_statement_path[-1] == (ticket.pk, task)
    assert WorkflowTicket.objects.count() == 2
    # The refused statement stored nothing, not even a round-robin turn of the old role.
    assert RoundRobinState.objects.get(role_name=role.name).next_index == 1


def test_a_workflow_paused_between_planning_and_writing_leaves_the_new_ticket_without_a_workflow(
    tts, workflow, role
):
    tts.role(role.name, [3])
    _deliver(ticket_payload("TX-1"), message_id="m-1")

    tts.role_after(
        role.name,
        [3],
        lambda: Workflows.objects.filter(pk=workflow.pk).update(status=Workflows.Status.PAUSED),
    )

    _deliver(ticket_payload("TX-2"), message_id="m-2")

    ticket = WorkflowTicket.objects.get(ticket_number="TX-2")
    assert not ticket.is_task_allocated
    assert ticket.allocation_attempts == 1
    assert ticket.allocation_error == Reason.NO_WORKFLOW
    assert not Task.objects.filter(ticket=ticket).exists()
