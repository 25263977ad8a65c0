"""The per-process route cache: served without a query, never trusted once routing has changed."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import make_workflow, ticket_payload
from task.models import RoundRobinState
from tickets import tasks
from tickets.models import WorkflowTicket
from workflow import selectors
from workflow.models import Roles, RoutingVersion, Steps, Workflows
from workflow.selectors import route_is_current, ticket_route

pytestmark = pytest.mark.django_db

# Elsewhere (SQLite, for local use) every route is looked up afresh: nothing to keep current.
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="routes are cached, and the routing version kept by triggers, on PostgreSQL only",
)
IT = {"department": "IT Department", "category": "IT Support", "sub_category": ""}


def _routing_version() -> int:
    return RoutingVersion.objects.values_list("version", flat=True).get(pk=1)


def _receive(payload: dict, capture) -> WorkflowTicket:
    """Deliver one ticket message and run the allocation it enqueues; returns the stored ticket."""
    with capture(execute=True):
        result = tasks.receive_ticket.delay(payload).get()
    return WorkflowTicket.objects.get(pk=result["ticket_id"])


@pytest.fixture
def network(db) -> Roles:
    return Roles.objects.create(name="Network Engineer")


# Lookups


@postgresql_only
def test_a_second_lookup_of_the_same_route_sends_no_query(workflow, role, django_assert_num_queries):
    first = ticket_route(**IT)

    with django_assert_num_queries(0):
        again = ticket_route(**IT)
        role_name = again.step.role.name

    assert first.workflow == again.workflow == workflow
    assert again.step == workflow.steps.get()
    assert role_name == role.name


def test_routes_are_cached_per_department_category_and_sub_category(role, network):
    generic = make_workflow(name="Generic", steps=[role])
    vpn = make_workflow(name="VPN", sub_category="VPN", steps=[network])
    ticket_route(**IT)

    with CaptureQueriesContext(connection) as queries:
        route = ticket_route(**{**IT, "sub_category": "VPN"})

    assert route.workflow == vpn
    assert len(queries) > 0
    assert ticket_route(**IT).workflow == generic


def test_a_ticket_without_a_workflow_is_not_cached_so_a_workflow_deployed_later_is_found(role):
    assert ticket_route(**IT).workflow is None

    workflow = make_workflow(steps=[role])

    assert ticket_route(**IT).workflow == workflow


@postgresql_only
def test_a_cached_route_is_confirmed_with_one_query_until_routing_changes(
    workflow, role, django_assert_num_queries
):
    ticket_route(**IT)
    cached = ticket_route(**IT)

    with django_assert_num_queries(1):
        assert route_is_current(cached)

    Roles.objects.filter(pk=role.pk).update(description="Handles printers too")

    assert not route_is_current(cached)


@postgresql_only
def test_allocating_tickets_leaves_the_route_cached(tts, workflow, role, django_assert_num_queries):
    tts.role(role.name, [3])
    ticket = WorkflowTicket.objects.create(ticket_number="TX-1", subject="s", **IT)
    version = _routing_version()

    tasks.create_task_for_ticket.delay(ticket.pk).get()

    assert _routing_version() == version
    with django_assert_num_queries(0):
        assert ticket_route(**IT).workflow == workflow


# Every write to roles, workflows or steps changes the routing version


def _rename_role(*, role, spare, workflow):
    role.name = "Service Desk"
    role.save()


def _pause_workflow(*, role, spare, workflow):
    workflow.status = Workflows.Status.PAUSED
    workflow.save()


def _give_first_step_another_role(*, role, spare, workflow):
    step = workflow.steps.get()
    step.role = spare
    step.save()


def _describe_roles_with_raw_sql(*, role, spare, workflow):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Roles._meta.db_table} SET description = %s", ["edited by hand"])


ROUTING_WRITES = {
    "role created": lambda **o: Roles.objects.create(name="Manager"),
    "roles bulk-created": lambda **o: Roles.objects.bulk_create([Roles(name="A"), Roles(name="B")]),
    "role renamed with save()": _rename_role,
    "role renamed with QuerySet.update()": lambda *, role, **o: Roles.objects.filter(pk=role.pk).update(
        name="Service Desk"
    ),
    "role changed with raw SQL": _describe_roles_with_raw_sql,
    "role deleted": lambda *, spare, **o: spare.delete(),
    "workflow created": lambda **o: make_workflow(name="HR", department="HR Department"),
    "workflow paused with save()": _pause_workflow,
    "workflow paused with QuerySet.update()": lambda *, workflow, **o: Workflows.objects.filter(
        pk=workflow.pk
    ).update(status=Workflows.Status.PAUSED),
    "workflow deleted": lambda *, workflow, **o: workflow.delete(),
    "step added": lambda *, workflow, spare, **o: Steps.objects.create(
        workflow=workflow, role=spare, name="Approve", order=2
    ),
    "step given another role with save()": _give_first_step_another_role,
    "steps reordered with QuerySet.update()": lambda *, workflow, **o: Steps.objects.filter(
        workflow=workflow
    ).update(order=5),
    "step deleted": lambda *, workflow, **o: workflow.steps.get().delete(),
    "steps deleted with QuerySet.delete()": lambda *, workflow, **o: Steps.objects.filter(
        workflow=workflow
    ).delete(),
}


@postgresql_only
@pytest.mark.parametrize("change", ROUTING_WRITES.values(), ids=ROUTING_WRITES.keys())
def test_every_write_to_roles_workflows_or_steps_changes_the_routing_version(workflow, role, change):
    spare = Roles.objects.create(name="Spare")
    before = _routing_version()

    change(role=role, spare=spare, workflow=workflow)

    assert _routing_version() != before


@postgresql_only
# Committed first: PostgreSQL refuses TRUNCATE while the steps' deferred FK checks are pending.
@pytest.mark.django_db(transaction=True)
def test_truncating_steps_changes_the_routing_version(workflow):
    before = _routing_version()

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Steps._meta.db_table} CASCADE")

    assert _routing_version() != before


# The next ticket follows what the admin changed


def test_a_workflow_deployed_for_the_exact_sub_category_takes_the_next_ticket(
    tts, role, network, django_capture_on_commit_callbacks
):
    generic = make_workflow(name="Generic", steps=[role])
    tts.role(role.name, [3])
    tts.role(network.name, [8])
    first = _receive(ticket_payload("TX-1", sub_category="VPN"), django_capture_on_commit_callbacks)
    assert first.tasks.get().workflow == generic

    vpn = make_workflow(name="VPN", sub_category="VPN", steps=[network])
    second = _receive(ticket_payload("TX-2", sub_category="VPN"), django_capture_on_commit_callbacks)

    task = second.tasks.get()
    assert task.workflow == vpn
    assert task.get_assigned_user_ids() == [8]


def test_pausing_the_cached_workflow_hands_the_next_ticket_to_the_other_deployed_one(
    tts, role, django_capture_on_commit_callbacks
):
    oldest = make_workflow(name="Oldest", steps=[role])
    other = make_workflow(name="Other", steps=[role])
    tts.role(role.name, [3])
    first = _receive(ticket_payload("TX-1"), django_capture_on_commit_callbacks)
    assert first.tasks.get().workflow == oldest

    oldest.status = Workflows.Status.PAUSED
    oldest.save()
    second = _receive(ticket_payload("TX-2"), django_capture_on_commit_callbacks)

    assert second.tasks.get().workflow == other


def test_pausing_the_only_workflow_leaves_the_next_ticket_without_a_task_for_want_of_a_workflow(
    tts, workflow, role, django_capture_on_commit_callbacks
):
    tts.role(role.name, [3])
    _receive(ticket_payload("TX-1"), django_capture_on_commit_callbacks)

    Workflows.objects.filter(pk=workflow.pk).update(status=Workflows.Status.PAUSED)
    second = _receive(ticket_payload("TX-2"), django_capture_on_commit_callbacks)

    assert not second.is_task_allocated
    assert second.allocation_error == WorkflowTicket.AllocationError.NO_WORKFLOW
    assert not second.tasks.exists()


def test_a_new_role_on_the_first_step_gets_the_next_ticket(
    tts, workflow, role, network, django_capture_on_commit_callbacks
):
    tts.role(role.name, [3])
    tts.role(network.name, [8, 9])
    _receive(ticket_payload("TX-1"), django_capture_on_commit_callbacks)

    _give_first_step_another_role(role=role, spare=network, workflow=workflow)
    second = _receive(ticket_payload("TX-2"), django_capture_on_commit_callbacks)

    task = second.tasks.get()
    assert [(user["userID"], user["role"]) for user in task.users] == [
        (8, network.name),
        (9, network.name),
    ]


def test_a_renamed_role_is_asked_for_by_its_new_name(tts, workflow, role, django_capture_on_commit_callbacks):
    tts.role(role.name, [3])
    tts.role("Service Desk", [9])
    _receive(ticket_payload("TX-1"), django_capture_on_commit_callbacks)

    Roles.objects.filter(pk=role.pk).update(name="Service Desk")
    second = _receive(ticket_payload("TX-2"), django_capture_on_commit_callbacks)

    task = second.tasks.get()
    assert [(user["userID"], user["role"]) for user in task.users] == [(9, "Service Desk")]
    assert set(RoundRobinState.objects.values_list("role_name", flat=True)) == {role.name, "Service Desk"}


@postgresql_only
def test_a_change_saved_while_tts_is_asked_sends_the_ticket_down_the_new_route(
    tts, workflow, role, network, settings, django_capture_on_commit_callbacks
):
    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = 1
    tts.role(role.name, [3, 6, 7])
    tts.role(network.name, [8])
    _receive(ticket_payload("TX-1"), django_capture_on_commit_callbacks)
    tts.role_after(role.name, [3, 6, 7], lambda: Steps.objects.filter(workflow=workflow).update(role=network))

    second = _receive(ticket_payload("TX-2"), django_capture_on_commit_callbacks)

    assert second.tasks.get().get_assigned_user_ids() == [8]
    # The refused write took no turn of the old role's rotation: user 6 is still next.
    assert RoundRobinState.objects.get(role_name=role.name).next_index == 1


def test_a_change_saved_while_a_route_is_looked_up_is_not_served_from_the_cache(
    tts, workflow, role, network, monkeypatch, django_capture_on_commit_callbacks
):
    tts.role(role.name, [3])
    tts.role(network.name, [8])
    look_up_first_step = selectors.workflow_first_step
    changed = []

    def first_step_then_admin_saves(*, workflow):
        step = look_up_first_step(workflow=workflow)
        if not changed:
            Steps.objects.filter(workflow=workflow).update(role=network)
            changed.append(True)
        return step

    monkeypatch.setattr(selectors, "workflow_first_step", first_step_then_admin_saves)
    _receive(ticket_payload("TX-1"), django_capture_on_commit_callbacks)

    second = _receive(ticket_payload("TX-2"), django_capture_on_commit_callbacks)

    assert second.tasks.get().get_assigned_user_ids() == [8]


# A failure on a stale cached route is not believed


def test_no_users_for_the_cached_routes_old_role_reroutes_instead_of_recording_no_users(
    tts, workflow, role, network, django_capture_on_commit_callbacks
):
    tts.role(role.name, [3])
    _receive(ticket_payload("TX-1"), django_capture_on_commit_callbacks)
    tts.role(role.name, [])
    tts.role(network.name, [8])

    Steps.objects.filter(workflow=workflow).update(role=network)
    second = _receive(ticket_payload("TX-2"), django_capture_on_commit_callbacks)

    assert second.is_task_allocated
    assert second.allocation_error == WorkflowTicket.AllocationError.NONE
    assert second.tasks.get().get_assigned_user_ids() == [8]


def test_a_tts_outage_for_the_cached_routes_old_role_reroutes_instead_of_failing(
    tts, workflow, role, network, settings, django_capture_on_commit_callbacks
):
    settings.ALLOCATION_MAX_RETRIES = 0
    tts.role(role.name, [3])
    _receive(ticket_payload("TX-1"), django_capture_on_commit_callbacks)
    tts.role(role.name, [], status=503)
    tts.role(network.name, [8])

    Steps.objects.filter(workflow=workflow).update(role=network)
    second = _receive(ticket_payload("TX-2"), django_capture_on_commit_callbacks)

    assert second.allocation_error == WorkflowTicket.AllocationError.NONE
    assert second.tasks.get().get_assigned_user_ids() == [8]


def test_a_failure_on_a_cached_route_that_still_holds_is_recorded_after_one_tts_call(
    tts, workflow, role, django_capture_on_commit_callbacks
):
    tts.role(role.name, [3])
    _receive(ticket_payload("TX-1"), django_capture_on_commit_callbacks)
    tts.role(role.name, [])

    second = _receive(ticket_payload("TX-2"), django_capture_on_commit_callbacks)

    assert second.allocation_error == WorkflowTicket.AllocationError.NO_USERS
    assert not second.tasks.exists()
    assert tts.calls == 2
