"""Review of the assignment engine under concurrency: each test pins one race found in review.

Each test pins a race found in a review of the engine (each failed before its fix); each
forces its interleaving deterministically with threads holding their own PostgreSQL
connections (pattern of test_concurrent_updates.py), or an injected hook.
They are not marked `integration`: Celery runs eagerly, in-process, so wake-ups
enqueued on commit run here and no broker is needed.
"""

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from conftest import make_task, make_workflow, ticket_payload
from task import assignment, services, tts
from task.models import AssigneeLoad, Assignment, RoundRobinState, Task
from tickets import services as ticket_services
from tickets.models import WorkflowTicket
from workflow.models import Roles, Steps

pytestmark = pytest.mark.django_db(transaction=True)

ROLE = "IT Support Technician"
OTHER_ROLE = "Network Engineer"


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and snapshots: PostgreSQL only")


@pytest.fixture
def users_by_role(monkeypatch):
    """TTS as a dict, read by every thread (responses' mock is not needed here)."""
    roles: dict[str, list[int]] = {}
    monkeypatch.setattr(tts, "get_role_user_ids", lambda role_name: list(roles[role_name]))
    return roles


class Runner:
    """Functions on threads with their own connections; results and exceptions kept per name."""

    def __init__(self) -> None:
        self.results: dict[str, object] = {}
        self.errors: dict[str, BaseException] = {}
        self.threads: list[threading.Thread] = []

    def start(self, name: str, function: Callable[[], object]) -> None:
        def run() -> None:
            try:
                self.results[name] = function()
            except BaseException as exc:  # reported by the test
                self.errors[name] = exc
            finally:
                connection.close()

        thread = threading.Thread(target=run, name=name)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in self.threads), "a thread hung"


def _wait_for_lock_waiter(timeout: float = 10) -> None:
    """Until some backend of this database waits on a lock (a thread queued behind another)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)
    raise AssertionError("no backend ever waited on a lock")


def _new_ticket(number: str, **overrides):
    payload = ticket_payload(number, **overrides)
    fields = ticket_services.ticket_parse(payload=payload)
    return services.task_create_with_new_ticket(ticket_fields=fields, payload=payload)


def _open_loads(user_id: int) -> tuple[int, int]:
    """(counter total, recount of open rows) for a user, across roles."""
    counter = AssigneeLoad.objects.filter(user_id=user_id).aggregate(n=Sum("open_assignments"))["n"] or 0
    return counter, Assignment.objects.filter(user_id=user_id, is_open=True).count()


def _hold_first_decision_then_run_second(first, second) -> Runner:
    """`first` writes inside a transaction kept open until released (_release_and_join);
    `second` starts once `first` has written: it may queue on a lock `first` holds."""
    written, release = threading.Event(), threading.Event()

    def hold_first():
        with transaction.atomic():
            result = first()
            written.set()
            assert release.wait(20)
        return result

    def then_second():
        assert written.wait(20)
        return second()

    runner = Runner()
    runner.release = release
    runner.start("first", hold_first)
    assert written.wait(20), "first decision never wrote"
    runner.start("second", then_second)
    return runner


def _release_and_join(runner: Runner) -> None:
    runner.release.set()
    runner.join()


# --- 1. The rotation lock serializes decisions, but the loads they read are stale -------------


def test_a_decision_queued_on_the_roles_rotation_lock_sees_the_capacity_used_by_the_one_before(
    users_by_role,
):
    """read_role_state(lock=True) is one statement: its snapshot is taken BEFORE it waits for the
    rotation row, so after the holder commits it gets the fresh rotation (and version) but the
    holder's load increments are invisible. The version check then passes: user 3 (capacity 1)
    gets a second open assignment from two new tickets in one role."""
    role = Roles.objects.create(name=ROLE)
    workflow = make_workflow(steps=[role])
    Steps.objects.filter(workflow=workflow).update(max_assignees=1)
    users_by_role[ROLE] = [3]
    services.availability_set(user_id=3, actor="1", max_open_assignments=1)
    RoundRobinState.objects.create(role_name=ROLE, next_index=0, version=1)  # a role that has decided before

    runner = _hold_first_decision_then_run_second(
        lambda: _new_ticket("TX-RV-A"), lambda: _new_ticket("TX-RV-B")
    )
    _wait_for_lock_waiter()  # the second decision queues on the rotation row
    _release_and_join(runner)

    assert "first" not in runner.errors
    second_error = runner.errors.get("second")
    assert second_error is not None and getattr(second_error, "reason", None) == "no_available_users", (
        f"the second ticket was given to user 3 beyond capacity 1: result={runner.results.get('second')!r}"
    )
    assert _open_loads(3) == (1, 1)


def test_load_balanced_decisions_queued_on_the_rotation_lock_balance_on_current_loads(users_by_role):
    """Same stale snapshot, load_balanced: user 6 already holds 1; two new tickets should go to
    3 then 6 (tie broken by rotation). The queued decision still sees 3 at load 0 and picks 3 again."""
    role = Roles.objects.create(name=ROLE)
    workflow = make_workflow(steps=[role])
    Steps.objects.filter(workflow=workflow).update(max_assignees=1, assignment_strategy="load_balanced")
    users_by_role[ROLE] = [3, 6]
    make_task(workflow, number="TX-RV-PRE", users=[{"userID": 6, "role": ROLE}])
    RoundRobinState.objects.create(role_name=ROLE, next_index=0, version=1)

    runner = _hold_first_decision_then_run_second(
        lambda: _new_ticket("TX-RV-A"), lambda: _new_ticket("TX-RV-B")
    )
    _wait_for_lock_waiter()
    _release_and_join(runner)

    assert runner.errors == {}
    assert Task.objects.get(ticket__ticket_number="TX-RV-A").get_assigned_user_ids() == [3]
    assert Task.objects.get(ticket__ticket_number="TX-RV-B").get_assigned_user_ids() == [6], (
        "load_balanced gave the least-loaded user a second ticket on stale loads"
    )


# --- 4. Capacity across roles -------------------------------------------------------------------


def test_two_decisions_in_different_roles_never_put_a_user_over_capacity(users_by_role):
    """Decisions in different roles share nothing that serializes them: both read user 3's
    total load (0) before the other commits and both assign user 3 (capacity 1)."""
    first_role, second_role = Roles.objects.create(name=ROLE), Roles.objects.create(name=OTHER_ROLE)
    for name, category, role in (("A", "IT Support", first_role), ("B", "Network", second_role)):
        workflow = make_workflow(name=name, category=category, steps=[role])
        Steps.objects.filter(workflow=workflow).update(max_assignees=1)
    users_by_role[ROLE] = [3, 6]
    users_by_role[OTHER_ROLE] = [3, 7]
    services.availability_set(user_id=3, actor="1", max_open_assignments=1)

    runner = _hold_first_decision_then_run_second(
        lambda: _new_ticket("TX-RV-A"), lambda: _new_ticket("TX-RV-B", category="Network")
    )
    time.sleep(0.5)  # the second decision does not queue anywhere: it commits while the first holds
    _release_and_join(runner)

    assert "first" not in runner.errors
    second_error = runner.errors.get("second")  # correct outcomes: user 7 chosen, or the ticket waits
    assert second_error is None or getattr(second_error, "reason", None) == "no_available_users", second_error
    counter, recount = _open_loads(3)
    assert recount <= 1, f"user 3 holds {recount} open assignments with max_open_assignments=1"


# --- 1. A waiting ticket whose wake-up came too early ------------------------------------------


def test_a_ticket_that_starts_waiting_while_its_user_is_freed_is_allocated_without_the_sweeper(
    users_by_role, monkeypatch
):
    """The decision sees user 3 at capacity; before the ticket is recorded as waiting, user 3's
    task completes and its on-commit wake-up finds no waiting ticket, so enqueues nothing. The
    ticket is then recorded `no_available_users` and waits for the periodic sweeper (300 s, and
    only if beat runs), although user 3 has been free all along."""
    role = Roles.objects.create(name=ROLE)
    workflow = make_workflow(steps=[role])
    Steps.objects.filter(workflow=workflow).update(max_assignees=1)
    users_by_role[ROLE] = [3]
    services.availability_set(user_id=3, actor="1", max_open_assignments=1)
    busy = make_task(workflow, number="TX-RV-BUSY", users=[{"userID": 3, "role": ROLE}])

    record = ticket_services.ticket_record_allocation_failure

    def freed_just_before_recorded(**kwargs):
        if Task.objects.get(pk=busy.pk).status != Task.Status.COMPLETED:
            services.task_complete(task_id=busy.pk)  # commits; its wake-up runs now (eager Celery)
        return record(**kwargs)

    monkeypatch.setattr(ticket_services, "ticket_record_allocation_failure", freed_just_before_recorded)

    ticket_services.ticket_intake(
        payload=ticket_payload("TX-RV-WAIT"), message_id="m-1", redelivered=False, retried=False
    )

    ticket = WorkflowTicket.objects.get(ticket_number="TX-RV-WAIT")
    assert ticket.is_task_allocated, f"still waiting ({ticket.allocation_error}) with user 3 free"
    assert _open_loads(3) == (1, 1)


# --- 3. Lock ordering of load counters ----------------------------------------------------------


def test_two_staff_swapping_users_on_two_tasks_at_once_do_not_deadlock(users_by_role, monkeypatch):
    """task_reassign updates load rows in two passes: the leaving user's row (decrement), then
    the new user's (increment). Reassigning 7->3 on one task and 3->7 on another at once locks
    (7) then (3), and (3) then (7): PostgreSQL aborts one with a deadlock. The barrier only
    pins the interleaving that a busy service hits by chance."""
    role = Roles.objects.create(name=ROLE)
    workflow = make_workflow(steps=[role])
    users_by_role[ROLE] = [3, 7]
    one = make_task(workflow, number="TX-RV-ONE", users=[{"userID": 7, "role": ROLE}])
    two = make_task(workflow, number="TX-RV-TWO", users=[{"userID": 3, "role": ROLE}])

    both_decremented = threading.Barrier(2)
    close = services._close_assignments

    def close_then_wait(*args, **kwargs):
        close(*args, **kwargs)
        # BrokenBarrierError: the other one queued on a lock first (a correct order): nothing to interleave.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_decremented.wait(timeout=3)

    monkeypatch.setattr(services, "_close_assignments", close_then_wait)

    runner = Runner()
    runner.start("7->3", lambda: services.task_reassign(task_id=one.pk, from_user_id=7, to_user_id=3))
    runner.start("3->7", lambda: services.task_reassign(task_id=two.pk, from_user_id=3, to_user_id=7))
    runner.join()

    assert runner.errors == {}, f"{ {name: repr(exc) for name, exc in runner.errors.items()} }"


# --- 5. Availability ---------------------------------------------------------------------------


def test_setting_unavailable_takes_effect_after_an_earlier_until_has_passed(users_by_role):
    """availability_set changes only the fields given: a stale, past `until` from an earlier
    absence stays on the row, and status_at() then reads the new `unavailable` as `available`.
    The user keeps getting work, and no reassignment is triggered."""
    role = Roles.objects.create(name=ROLE)
    make_workflow(steps=[role])
    users_by_role[ROLE] = [3]
    services.availability_set(
        user_id=3, actor="3", status="away", until=timezone.now() + timedelta(milliseconds=200)
    )
    time.sleep(0.3)  # the absence is over: `until` has passed

    services.availability_set(user_id=3, actor="3", status="unavailable")  # as PUT {"status": ...}

    state = assignment.read_role_state(role=ROLE, user_ids=[3])
    assert state.availability[3].status_at(timezone.now()) == "unavailable"


def test_an_assignment_decided_while_its_user_becomes_unavailable_is_moved_to_someone_else(users_by_role):
    """A decision reads user 3 as available; user 3 becomes unavailable and the reassignment
    runs (after that commit) before the decision commits, so it finds nothing to move. The
    decision then commits: an unavailable user holds a not-started assignment that no path
    will ever move (spec 6: their `assigned` assignments move to the next eligible users)."""
    role = Roles.objects.create(name=ROLE)
    workflow = make_workflow(steps=[role])
    Steps.objects.filter(workflow=workflow).update(max_assignees=1)
    users_by_role[ROLE] = [3, 6]
    # The role has decided before: its rotation row exists, which the reassignment waits on.
    # (A role's very first decision leaves this to the sweeper's pass over unavailable users.)
    _, earlier = _new_ticket("TX-RV-0")
    services.task_complete(task_id=earlier.pk)
    RoundRobinState.objects.filter(role_name=ROLE).update(next_index=0)  # user 3's turn again

    runner = _hold_first_decision_then_run_second(lambda: _new_ticket("TX-RV-A"), lambda: None)
    # Eager Celery: the reassignment enqueued on commit runs in that thread, as a worker would,
    # and waits there for the decision in flight.
    runner.start("unavailable", lambda: services.availability_set(user_id=3, actor="3", status="unavailable"))
    time.sleep(0.5)
    _release_and_join(runner)

    assert runner.errors == {}
    stranded = Assignment.objects.filter(
        user_id=3, is_current=True, status="assigned", task__status__in=["pending", "in_progress"]
    ).count()
    assert stranded == 0, "an unavailable user keeps a not-started assignment nobody will move"


def test_a_reassignment_that_frees_a_user_wakes_the_tickets_waiting_for_them(users_by_role):
    """User 3 (capacity 1) is in two roles; a ticket of the second role waits while user 3's one
    open assignment is in the first. Staff reassign that assignment to user 8: user 3 is free,
    but task_reassign never calls _wake_waiting_tickets_on_commit, so the ticket waits for the
    sweeper (spec 5: freed capacity allocates waiting tickets within seconds)."""
    first_role, second_role = Roles.objects.create(name=ROLE), Roles.objects.create(name=OTHER_ROLE)
    first = make_workflow(name="A", category="IT Support", steps=[first_role])
    make_workflow(name="B", category="Network", steps=[second_role])
    Steps.objects.update(max_assignees=1)
    users_by_role[ROLE] = [3, 8]
    users_by_role[OTHER_ROLE] = [3]
    services.availability_set(user_id=3, actor="1", max_open_assignments=1)
    busy = make_task(first, number="TX-RV-BUSY", users=[{"userID": 3, "role": ROLE}])
    ticket_services.ticket_intake(
        payload=ticket_payload("TX-RV-WAIT", category="Network"),
        message_id="m-1",
        redelivered=False,
        retried=False,
    )
    assert WorkflowTicket.objects.get(ticket_number="TX-RV-WAIT").allocation_error == WorkflowTicket.WAITING

    services.task_reassign(task_id=busy.pk, from_user_id=3)  # the strategy picks user 8

    assert Task.objects.get(pk=busy.pk).get_assigned_user_ids() == [8]
    ticket = WorkflowTicket.objects.get(ticket_number="TX-RV-WAIT")
    assert ticket.is_task_allocated, "user 3 was freed but the waiting ticket was not woken"


def test_two_tasks_moving_between_two_roles_in_opposite_directions_do_not_deadlock(
    users_by_role, monkeypatch
):
    """task_move_to_next_step decrements the old step's load rows, then increments the new
    step's, in two passes. Task A moves X->Y (frees 3 in X, gives 7 in Y) while task B moves
    Y->X (frees 7 in Y, gives 3 in X): rows (3,X),(7,Y) are locked in opposite orders."""
    x, y = Roles.objects.create(name=ROLE), Roles.objects.create(name=OTHER_ROLE)
    forward = make_workflow(name="X then Y", category="IT Support", steps=[x, y])
    backward = make_workflow(name="Y then X", category="Network", steps=[y, x])
    Steps.objects.update(max_assignees=1)
    users_by_role[ROLE] = [3]
    users_by_role[OTHER_ROLE] = [7]
    task_a = make_task(forward, number="TX-RV-A", users=[{"userID": 3, "role": ROLE}])
    task_b = make_task(backward, number="TX-RV-B", users=[{"userID": 7, "role": OTHER_ROLE}])

    both_decremented = threading.Barrier(2)
    close = services._close_assignments

    def close_then_wait(*args, **kwargs):
        close(*args, **kwargs)
        # BrokenBarrierError: the other one queued on a lock first (a correct order): nothing to interleave.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_decremented.wait(timeout=3)

    monkeypatch.setattr(services, "_close_assignments", close_then_wait)

    runner = Runner()
    runner.start("A", lambda: services.task_move_to_next_step(task_id=task_a.pk))
    runner.start("B", lambda: services.task_move_to_next_step(task_id=task_b.pk))
    runner.join()

    assert runner.errors == {}, f"{ {name: repr(exc) for name, exc in runner.errors.items()} }"


def test_moving_a_task_counts_the_capacity_the_move_itself_frees(users_by_role):
    """task_move_to_next_step decides before it closes the current step's assignments, so the
    loads it reads still include them: user 3 (capacity 1), on step 1 and the only user of
    step 2's role, can never receive step 2 (NobodyAvailable), although the move frees them."""
    x, y = Roles.objects.create(name=ROLE), Roles.objects.create(name=OTHER_ROLE)
    workflow = make_workflow(steps=[x, y])
    Steps.objects.update(max_assignees=1)
    users_by_role[ROLE] = [3]
    users_by_role[OTHER_ROLE] = [3]
    services.availability_set(user_id=3, actor="1", max_open_assignments=1)
    task = make_task(workflow, users=[{"userID": 3, "role": ROLE}])

    services.task_move_to_next_step(task_id=task.pk)

    moved = Task.objects.get(pk=task.pk)
    assert moved.current_step.order == 2
    assert moved.get_assigned_user_ids() == [3]
    assert _open_loads(3) == (1, 1)


def test_waiting_tickets_of_one_role_do_not_starve_the_waiting_tickets_of_another(users_by_role):
    """ticket_allocate_waiting reads the 500 oldest waiting tickets of ALL roles, then skips the
    younger tickets of a role whose head still waits. With 500 tickets waiting in role X (its
    only user away for a week), a ticket of role Y is never even looked at when Y's user comes
    back: not by the wake-up, not by the sweeper (same function, same limit)."""
    x, y = Roles.objects.create(name=ROLE), Roles.objects.create(name=OTHER_ROLE)
    make_workflow(name="A", category="IT Support", steps=[x])
    make_workflow(name="B", category="Network", steps=[y])
    users_by_role[ROLE] = [3]
    users_by_role[OTHER_ROLE] = [7]
    for user_id in (3, 7):
        services.availability_set(user_id=user_id, actor="1", status="unavailable")
    WorkflowTicket.objects.bulk_create(
        WorkflowTicket(
            ticket_number=f"TX-RV-X{n}",
            subject="X",
            department="IT Department",
            category="IT Support",
            sub_category="",
            allocation_error=WorkflowTicket.WAITING,
            allocation_attempts=1,
        )
        for n in range(500)
    )
    ticket_services.ticket_intake(
        payload=ticket_payload("TX-RV-Y", category="Network"),
        message_id="m-1",
        redelivered=False,
        retried=False,
    )
    assert WorkflowTicket.objects.get(ticket_number="TX-RV-Y").allocation_error == WorkflowTicket.WAITING

    services.availability_set(user_id=7, actor="7", status="available")  # wakes waiting tickets (eager)

    assert WorkflowTicket.objects.get(ticket_number="TX-RV-Y").is_task_allocated, "role Y's ticket starves"


def test_an_assignment_started_while_its_user_becomes_unavailable_stays_with_them(users_by_role, monkeypatch):
    """task_reassign_from_unavailable_user lists `assigned` rows, then calls task_reassign per
    task; task_reassign checks under the task lock only that the user is still on the step, not
    that the assignment is still not started. A user who starts the work in between (or a
    lead's status update) has their started assignment moved away (spec 6: started ones stay)."""
    role = Roles.objects.create(name=ROLE)
    workflow = make_workflow(steps=[role])
    users_by_role[ROLE] = [3, 6]
    task = make_task(workflow, users=[{"userID": 3, "role": ROLE}])

    reassign = services.task_reassign

    def started_just_before(**kwargs):
        services.task_update_user_status(task_id=kwargs["task_id"], user_id=3, new_status="in_progress")
        return reassign(**kwargs)

    monkeypatch.setattr(services, "task_reassign", started_just_before)

    services.task_reassign_from_unavailable_user(user_id=3)

    assert Task.objects.get(pk=task.pk).get_assigned_user_ids() == [3], "a started assignment was moved"
