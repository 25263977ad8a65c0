"""Tasks and their assignments: every write to a task, its assignees and its history goes through here.

Who gets work is decided by task.assignment; this module asks TTS for the
candidates, reads the role's state, asks for a decision and stores it with
its record, in one transaction that only commits if no other decision in the
role came in between.
"""

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from task import assignment, tts
from task.assignment import Decision
from task.models import (
    AssigneeLoad,
    Assignment,
    AvailabilityChange,
    CandidateList,
    RoundRobinState,
    Task,
    TaskEvent,
    UserAvailability,
)
from tickets.models import WorkflowTicket
from workflow.models import Steps, Workflows
from workflow.selectors import (
    TicketRoute,
    route_is_current,
    route_still_current,
    route_still_current_sql,
    ticket_route,
    workflow_next_step,
)
from workflow_api import errors, metrics
from workflow_api.celery import app as celery_app

logger = logging.getLogger(__name__)

AllocationError = WorkflowTicket.AllocationError
Kind = TaskEvent.Kind
SYSTEM = TaskEvent.SYSTEM

# Another decision in the same role may commit between reading the role's
# state and writing; the decision is then made again on the new state.
MAX_DECISION_ROUNDS = 20


class AllocationFailed(errors.Conflict):
    """A ticket cannot get a task as things stand (no workflow, no steps, no users, nobody available)."""

    def __init__(self, message: str, *, reason: AllocationError) -> None:
        super().__init__(message, code=reason.value)
        self.reason = reason


class NobodyAvailable(errors.Conflict):
    """Every user of the role is unavailable, at capacity or already on the step."""

    code = "no_available_users"


class _TurnTaken(Exception):
    """Another decision in the role committed after this one read the state: decide again."""


def _utc_now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- Decisions -----------------------------------------------------------------


def _decide(
    *,
    step: Steps,
    candidates: list[int],
    now: datetime,
    exclude: frozenset[int] = frozenset(),
    take: int | None = None,
    state: assignment.RoleState | None = None,
    probe_ticket_number: str | None = None,
    releasing: Iterable[Assignment] = (),
) -> tuple[Decision, assignment.RoleState]:
    """Inside a transaction: lock the role's rotation, read its state and decide.

    A chosen user with an availability row is locked too, and the decision
    made again on what they hold then: two decisions in different roles cannot
    both take a user's last place, and a user being made unavailable is either
    seen as such or has the new assignment moved by the change's reassignment. Locks are taken in one order
    on every path: the role's rotation, then users, then the ticket or task,
    then load counters. `state`: the role's state, read under the lock already.
    `releasing`: open assignments the same transaction closes, not counted.
    """
    locked_users: set[int] = set()
    rotation_created = False
    while True:
        if state is None:
            state = assignment.read_role_state(
                role=step.role.name,
                user_ids=candidates,
                probe_ticket_number=probe_ticket_number,
                lock=True,
                # Round robin orders by the rotation, which the lock returns as the decision
                # before left it; capacity and availability are read again under the users'
                # own locks below. Load balancing orders by loads, which must be that fresh too.
                fresh_loads=step.assignment_strategy == Steps.AssignmentStrategy.LOAD_BALANCED
                or bool(locked_users),
            )
        if (
            state.version is None
            and candidates
            and not rotation_created
            and connection.vendor == "postgresql"
        ):
            # The role's first decision: create its rotation row, so that there
            # is a row to lock (and to wait on) from this decision on.
            RoundRobinState.objects.bulk_create(
                [RoundRobinState(role_name=step.role.name, next_index=0, version=0)], ignore_conflicts=True
            )
            state, rotation_created = None, True
            continue
        state = state.without(releasing)
        decision = assignment.decide(
            strategy=step.assignment_strategy,
            candidates=candidates,
            take=step.assignee_count if take is None else take,
            state=state,
            now=now,
            exclude=exclude,
        )
        # Users with an availability row: a capacity to keep, or a status that
        # may be changing while this decision is made.
        capped = {user_id for user_id in decision.chosen if user_id in state.availability} - locked_users
        if not capped or state.ticket_stored or connection.vendor != "postgresql":
            return decision, state
        # Held until commit; whatever was read before may predate another
        # role's decision for these users, so the state is read again.
        list(
            UserAvailability.objects.select_for_update()
            .filter(user_id__in=sorted(capped))
            .order_by("user_id")
        )
        locked_users |= capped
        state = None


def _claim_turn(decision: Decision, *, now: datetime) -> None:
    """Move the role's rotation as decided; raises _TurnTaken if another decision came first.

    Inside the transaction that stores the decision: the row stays locked until
    it commits, so a rolled-back decision consumes no turn.
    """
    if decision.state_version is None:
        try:
            with transaction.atomic():
                RoundRobinState.objects.create(
                    role_name=decision.role, next_index=decision.next_cursor, version=1
                )
        except IntegrityError:
            raise _TurnTaken from None
        return
    claimed = RoundRobinState.objects.filter(role_name=decision.role, version=decision.state_version).update(
        next_index=decision.next_cursor, version=F("version") + 1, updated_at=now
    )
    if not claimed:
        raise _TurnTaken


def _change_loads(deltas: dict[tuple[int, str], int]) -> None:
    """Add to users' open-assignment counts per role, one row at a time in (user, role) order.

    Call it once per transaction with everything the transaction changes: two
    transactions then lock the rows they share in the same order, and cannot
    deadlock on them.
    """
    table = AssigneeLoad._meta.db_table
    changes = sorted((key, delta) for key, delta in deltas.items() if delta)
    if changes and all(delta > 0 for _, delta in changes):
        # Only increments (a new decision): one statement, rows taken in the same order.
        values = ", ".join(["(%s, %s, %s)"] * len(changes))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (user_id, role, open_assignments) VALUES {values} "
                f"ON CONFLICT (user_id, role) DO UPDATE "
                f"SET open_assignments = {table}.open_assignments + excluded.open_assignments",
                [value for (user_id, role), delta in changes for value in (user_id, role, delta)],
            )
        return
    for (user_id, role), delta in changes:
        if delta > 0:
            # Created on first use. PostgreSQL checks the proposed row before
            # the conflict, so only increments can take this way.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} (user_id, role, open_assignments) VALUES (%s, %s, %s) "
                    f"ON CONFLICT (user_id, role) DO UPDATE "
                    f"SET open_assignments = {table}.open_assignments + excluded.open_assignments",
                    [user_id, role, delta],
                )
        elif delta < 0:
            AssigneeLoad.objects.filter(user_id=user_id, role=role).update(
                open_assignments=F("open_assignments") + delta
            )


def _load_deltas(
    assignments: Iterable[Assignment], sign: int, into: dict[tuple[int, str], int] | None = None
) -> dict[tuple[int, str], int]:
    deltas: dict[tuple[int, str], int] = {} if into is None else into
    for row in assignments:
        key = (row.user_id, row.role)
        deltas[key] = deltas.get(key, 0) + sign
    return deltas


def _record(task_id: int, kind: str, *, actor: str, now: datetime, step_id: int | None, **details) -> None:
    TaskEvent.objects.create(
        task_id=task_id, kind=kind, actor=actor, at=now, step_id=step_id, details=details
    )


def _store_candidates(decision: Decision, *, now: datetime) -> None:
    CandidateList.objects.bulk_create(
        [
            CandidateList(
                digest=decision.candidates_digest,
                role=decision.role,
                user_ids=list(decision.candidates),
                first_seen=now,
            )
        ],
        ignore_conflicts=True,
    )


def _store_decision(
    *,
    task: Task,
    step: Steps,
    decision: Decision,
    origin: str,
    trigger: str,
    kind: str,
    actor: str,
    now: datetime,
    loads: dict[tuple[int, str], int],
    extra: dict | None = None,
) -> list[Assignment]:
    """The decision's assignments and record, inside the transaction that claimed its turn.

    Their load changes are added to `loads`, for the transaction's one _change_loads.
    """
    counts = task.status in Task.ACTIVE_STATUSES
    rows = Assignment.objects.bulk_create(
        [
            Assignment(
                task=task,
                step=step,
                user_id=user_id,
                role=decision.role,
                status=Assignment.Status.ASSIGNED,
                origin=origin,
                is_current=True,
                is_open=counts,
                assigned_on=now,
                status_updated_on=now,
            )
            for user_id in decision.chosen
        ]
    )
    if counts:
        _load_deltas(rows, +1, into=loads)
    _store_candidates(decision, now=now)
    _record(
        task.pk,
        kind,
        actor=actor,
        now=now,
        step_id=step.pk,
        decision=decision.record(trigger=trigger),
        **(extra or {}),
    )
    return rows


def _close_assignments(
    rows: list[Assignment], *, leave_step: bool, loads: dict[tuple[int, str], int]
) -> None:
    """Stop rows counting as open work (their load changes added to `loads`); `leave_step` also
    takes them off the task's `users`."""
    if not rows:
        return
    open_rows = [row for row in rows if row.is_open]
    changes = {"is_open": False}
    if leave_step:
        changes["is_current"] = False
    Assignment.objects.filter(pk__in=[row.pk for row in rows]).update(**changes)
    _load_deltas(open_rows, -1, into=loads)
    for row in rows:
        row.is_open = False
        if leave_step:
            row.is_current = False


def apply_round_robin_assignment(user_ids: list[int], role_name: str, max_assignments: int = 3) -> list[dict]:
    """The spec's helper: take the role's next `max_assignments` turns and return them as `users` entries.

    Decided by the assignment engine like every other assignment (round
    robin, skipping unavailable users and users at capacity); the role's
    rotation lives in the database, shared by every worker.
    """
    if not user_ids or max_assignments <= 0:
        return []
    assigned_on = _utc_now_iso()
    for _ in range(MAX_DECISION_ROUNDS):
        now = timezone.now()
        state = assignment.read_role_state(role=role_name, user_ids=user_ids)
        decision = assignment.decide(
            strategy=Steps.AssignmentStrategy.ROUND_ROBIN,
            candidates=user_ids,
            take=max_assignments,
            state=state,
            now=now,
        )
        if decision.waiting:
            return []
        try:
            with transaction.atomic():
                _claim_turn(decision, now=now)
        except _TurnTaken:
            continue
        return [
            {
                "userID": user_id,
                "status": Assignment.Status.ASSIGNED.value,
                "assigned_on": assigned_on,
                "role": role_name,
            }
            for user_id in decision.chosen
        ]
    raise errors.Conflict(f"Role {role_name!r}: too many concurrent decisions; retry")


# --- Planning a ticket's task --------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """Where a ticket's task goes and who TTS lists for it, settled before anything is written."""

    route: TicketRoute  # with a workflow and a step
    user_ids: list[int]

    @property
    def workflow(self) -> Workflows:
        return self.route.workflow

    @property
    def step(self) -> Steps:
        return self.route.step


def task_plan_allocation(
    *, department: str, category: str, sub_category: str, use_cache: bool = True
) -> Allocation:
    """The ticket's workflow, its first step and the users TTS lists for that step's role.

    Raises AllocationFailed, tts.TTSUnavailable or tts.TTSBadResponse. Outside
    any transaction: no row lock is held while waiting on HTTP. A failure is
    only believed once the database says routing has not changed since the
    route was read (it may come from this process's cache); otherwise the
    ticket is routed again, uncached.
    """
    route = ticket_route(
        department=department, category=category, sub_category=sub_category, use_cache=use_cache
    )
    try:
        return _plan_on_route(route, department=department, category=category, sub_category=sub_category)
    except (AllocationFailed, tts.TTSUnavailable, tts.TTSBadResponse):
        if route_is_current(route):
            raise
    route = ticket_route(department=department, category=category, sub_category=sub_category, use_cache=False)
    return _plan_on_route(route, department=department, category=category, sub_category=sub_category)


def _plan_on_route(route: TicketRoute, *, department: str, category: str, sub_category: str) -> Allocation:
    if route.workflow is None:
        raise AllocationFailed(
            f"No deployed workflow for {department!r} / {category!r} / {sub_category!r}",
            reason=AllocationError.NO_WORKFLOW,
        )
    if route.step is None:
        raise AllocationFailed(
            f"Workflow {route.workflow.name!r} has no steps", reason=AllocationError.NO_STEPS
        )
    return Allocation(route=route, user_ids=_step_user_ids(step=route.step))


def _step_user_ids(*, step: Steps) -> list[int]:
    user_ids = tts.get_role_user_ids(step.role.name)
    if not user_ids:
        raise AllocationFailed(
            f"TTS lists no users for role {step.role.name!r}", reason=AllocationError.NO_USERS
        )
    return user_ids


def _waiting(decision: Decision, step: Steps) -> AllocationFailed:
    failed = AllocationFailed(decision.waiting_reason(), reason=AllocationError.NO_AVAILABLE_USERS)
    failed.step, failed.candidates = step, list(decision.candidates)
    return failed


def task_wake_if_eligible_now(*, failed: AllocationFailed) -> bool:
    """After a ticket was recorded waiting: if someone became eligible meanwhile, wake the waiting.

    Closes the gap between a decision that found nobody and the record that
    the ticket waits, in which a freed user's wake-up would find no ticket waiting.
    """
    step = getattr(failed, "step", None)
    if step is None:
        return False
    state = assignment.read_role_state(role=step.role.name, user_ids=failed.candidates)
    decision = assignment.decide(
        strategy=step.assignment_strategy,
        candidates=failed.candidates,
        take=step.assignee_count,
        state=state,
        now=timezone.now(),
    )
    if decision.waiting:
        return False
    _wake_waiting_tickets_on_commit()
    return True


# --- Creating a ticket's task --------------------------------------------------


def task_create_for_ticket(
    *, ticket_id: int, ticket: WorkflowTicket | None = None, trigger: str = "retry"
) -> tuple[Task, bool]:
    """Create the ticket's task and mark it allocated; returns (task, created).

    Idempotent: for a ticket that already has its task, returns that task and
    creates nothing. Raises NotFound, AllocationFailed (reason
    no_available_users when nobody in the role is eligible: the ticket waits),
    or tts.TTSUnavailable / tts.TTSBadResponse. `ticket`: the row as the
    caller has just stored it, which saves reading it again. `trigger`: what
    the decision record names as the reason for deciding.
    """
    if ticket is None:
        # Not the raw payload: allocation needs only the routing fields.
        ticket = (
            WorkflowTicket.objects.filter(pk=ticket_id)
            .only("ticket_number", "department", "category", "sub_category", "priority", "is_task_allocated")
            .first()
        )
    if ticket is None:
        raise errors.NotFound(f"Ticket {ticket_id} does not exist")
    # The flag and the task are written in one transaction, so only an
    # allocated ticket needs the lookup (a task made by hand is caught by the
    # constraint below).
    if ticket.is_task_allocated:
        existing = Task.objects.filter(ticket_id=ticket_id).first()
        if existing is not None:
            return existing, False

    routing = {
        "department": ticket.department,
        "category": ticket.category,
        "sub_category": ticket.sub_category,
    }
    created = _create_task(ticket=ticket, plan=task_plan_allocation(**routing), trigger=trigger)
    if created is None:
        # Routing changed between planning and writing: plan again, uncached.
        created = _create_task(
            ticket=ticket, plan=task_plan_allocation(**routing, use_cache=False), trigger=trigger
        )
    return created


def _create_task(*, ticket: WorkflowTicket, plan: Allocation, trigger: str) -> tuple[Task, bool] | None:
    """Create the ticket's task as planned; None when the plan's cached route turned out stale."""
    for _ in range(MAX_DECISION_ROUNDS):
        try:
            with transaction.atomic():
                # Locks are taken in one order on every path: the role's
                # rotation (read and locked here), then the ticket or task,
                # then the load counters.
                now = timezone.now()
                decision, _state = _decide(step=plan.step, candidates=plan.user_ids, now=now)
                if decision.waiting:
                    raise _waiting(decision, plan.step)
                # Marking the ticket takes its row lock: concurrent deliveries
                # of one ticket queue here, and the loser's INSERT below then
                # hits one_task_per_ticket. The same statement confirms a
                # cached route.
                marked = WorkflowTicket.objects.filter(route_still_current(plan.route), pk=ticket.pk).update(
                    is_task_allocated=True,
                    allocation_error=AllocationError.NONE,
                    allocation_error_detail="",
                    last_allocation_attempt_at=now,
                    updated_at=now,
                )
                if not marked and plan.route.version is not None:
                    return None
                _claim_turn(decision, now=now)
                task = Task.objects.create(
                    ticket=ticket,
                    workflow=plan.workflow,
                    workflow_version_id=plan.workflow.live_version_id,
                    current_step=plan.step,
                    step_entered_at=now,
                    step_due_at=plan.step.deadline(
                        workflow=plan.workflow, ticket_priority=ticket.priority, entered_at=now
                    ),
                )
                loads: dict[tuple[int, str], int] = {}
                _store_decision(
                    task=task,
                    step=plan.step,
                    decision=decision,
                    origin=decision.strategy,
                    trigger=trigger,
                    kind=Kind.ASSIGNED,
                    actor=SYSTEM,
                    now=now,
                    loads=loads,
                )
                _change_loads(loads)
        except _TurnTaken:
            continue
        except IntegrityError:
            # Lost the race: the rollback undid our flag and turn too.
            existing = Task.objects.filter(ticket_id=ticket.pk).first()
            if existing is None:
                raise
            return existing, False
        _log_task_created(task, ticket_number=ticket.ticket_number, user_ids=decision.chosen)
        return task, True
    raise errors.Conflict(f"Role {plan.step.role.name!r}: too many concurrent decisions; retry")


def can_create_with_new_ticket() -> bool:
    """Whether task_create_with_new_ticket is available: it is one PostgreSQL statement."""
    return connection.vendor == "postgresql"


def task_create_with_new_ticket(*, ticket_fields: dict, payload: object) -> tuple[int, Task] | None:
    """Store a ticket seen for the first time together with its task; returns (ticket id, task).

    After TTS has answered, one read (the role's state, and whether the
    ticket number is stored) and one statement with one commit for the
    ticket, the role's turn, the task, its assignments, their loads and the
    decision's record (PostgreSQL only: can_create_with_new_ticket). Returns
    None, having written nothing, when the ticket number is already stored. Raises like task_plan_allocation
    (AllocationFailed with no_available_users when nobody is eligible),
    having written nothing.
    """
    received_at = timezone.now()
    routing = {key: ticket_fields[key] for key in ("department", "category", "sub_category")}
    plan = task_plan_allocation(**routing)
    for _ in range(MAX_DECISION_ROUNDS):
        try:
            # The read locks the role's rotation: decisions in the role queue
            # there, and this one is written before the lock is released.
            with transaction.atomic():
                now = timezone.now()
                decision, state = _decide(
                    step=plan.step,
                    candidates=plan.user_ids,
                    now=now,
                    probe_ticket_number=ticket_fields["ticket_number"],
                )
                if state.ticket_stored:
                    return None
                if decision.waiting:
                    raise _waiting(decision, plan.step)
                stored = _insert_ticket_with_task(
                    ticket_fields=ticket_fields,
                    payload=payload,
                    plan=plan,
                    decision=decision,
                    received_at=received_at,
                )
        except IntegrityError:
            return None  # the ticket number was stored by another delivery meanwhile
        if stored is not None:
            ticket_id, task = stored
            logger.info("Ticket %s created (id %s)", ticket_fields["ticket_number"], ticket_id)
            _log_task_created(task, ticket_number=ticket_fields["ticket_number"], user_ids=decision.chosen)
            return stored
        if not route_is_current(plan.route):
            # Routing changed between planning and writing: plan again, uncached.
            plan = task_plan_allocation(**routing, use_cache=False)
        # Otherwise another decision in the role came first: decide again.
    raise errors.Conflict(f"Role {plan.step.role.name!r}: too many concurrent decisions; retry")


def _insert_ticket_with_task(
    *, ticket_fields: dict, payload: object, plan: Allocation, decision: Decision, received_at: datetime
) -> tuple[int, Task] | None:
    """Write a decided new ticket in one statement: each part runs only if the role's turn was taken.

    The turn is taken only while routing is unchanged and no other decision
    in the role came in between; otherwise nothing is written and None is
    returned. A ticket number stored meanwhile raises IntegrityError, and the
    whole statement is undone. It chooses nobody: it writes what
    task.assignment decided.
    """
    now = timezone.now()
    due = plan.step.deadline(
        workflow=plan.workflow, ticket_priority=ticket_fields.get("priority"), entered_at=now
    )
    ticket_values = {
        **ticket_fields,
        "ticket_data": payload,
        "is_task_allocated": True,
        "allocation_attempts": 1,
        "last_allocation_attempt_at": received_at,
        "created_at": received_at,
        "updated_at": received_at,
    }
    # Every column, as the ORM would write it (model defaults for the rest).
    ticket_columns = [f for f in WorkflowTicket._meta.concrete_fields if not f.primary_key]
    ticket_params = [
        f.get_db_prep_save(ticket_values[f.name] if f.name in ticket_values else f.get_default(), connection)
        for f in ticket_columns
    ]
    route_check, route_params = route_still_current_sql(plan.route)
    quote = connection.ops.quote_name
    role = decision.role
    state_table = RoundRobinState._meta.db_table
    if decision.state_version is None:
        turn_sql = (
            f"INSERT INTO {state_table} (role_name, next_index, version, updated_at)"
            f" SELECT %s, %s, 1, %s WHERE {route_check}"
            f" ON CONFLICT (role_name) DO NOTHING RETURNING 1"
        )
        turn_params = [role, decision.next_cursor, now, *route_params]
    else:
        turn_sql = (
            f"UPDATE {state_table} SET next_index = %s, version = version + 1, updated_at = %s"
            f" WHERE role_name = %s AND version = %s AND {route_check} RETURNING 1"
        )
        turn_params = [decision.next_cursor, now, role, decision.state_version, *route_params]
    chosen = list(decision.chosen)
    load_table = AssigneeLoad._meta.db_table
    sql = (
        f"WITH turn AS ({turn_sql}), "
        f"ticket AS ("
        f" INSERT INTO {WorkflowTicket._meta.db_table} ({', '.join(quote(f.column) for f in ticket_columns)})"
        f" SELECT {', '.join(['%s'] * len(ticket_columns))} FROM turn RETURNING id), "
        f"task AS ("
        f" INSERT INTO {Task._meta.db_table}"
        f"  (ticket_id, workflow_id, workflow_version_id, current_step_id, status, created_at, updated_at,"
        f"   step_entered_at, step_due_at)"
        f" SELECT ticket.id, %s, %s, %s, %s, %s, %s, %s, %s FROM ticket RETURNING task_id, ticket_id), "
        f"assigned AS ("
        f" INSERT INTO {Assignment._meta.db_table} (task_id, step_id, user_id, role, username, email, status,"
        f"  origin, is_current, is_open, assigned_on, status_updated_on)"
        f" SELECT task.task_id, %s, chosen.user_id, %s, '', '', %s, %s, TRUE, TRUE, %s, %s"
        f" FROM task, unnest(%s::bigint[]) WITH ORDINALITY AS chosen(user_id, n) ORDER BY chosen.n), "
        f"loads AS ("
        f" INSERT INTO {load_table} (user_id, role, open_assignments)"
        f" SELECT chosen.user_id, %s, 1 FROM task, unnest(%s::bigint[]) AS chosen(user_id)"
        f" ON CONFLICT (user_id, role) DO UPDATE SET open_assignments = {load_table}.open_assignments + 1), "
        f"candidates AS ("
        f" INSERT INTO {CandidateList._meta.db_table} (digest, role, user_ids, first_seen)"
        f" SELECT %s, %s, %s::jsonb, %s FROM task ON CONFLICT (digest) DO NOTHING) "
        f"INSERT INTO {TaskEvent._meta.db_table} (task_id, kind, actor, at, step_id, details)"
        f" SELECT task.task_id, %s, %s, %s, %s, %s::jsonb FROM task "
        f"RETURNING (SELECT ticket_id FROM task), task_id"
    )
    params = [
        *turn_params,
        *ticket_params,
        *(
            plan.workflow.workflow_id,
            plan.workflow.live_version_id,
            plan.step.step_id,
            Task.Status.PENDING.value,
        ),
        *(now, now, now, due),
        *(plan.step.step_id, role, Assignment.Status.ASSIGNED.value, decision.strategy, now, now, chosen),
        *(role, sorted(chosen)),
        *(decision.candidates_digest, role, json.dumps(list(decision.candidates)), now),
        *(
            Kind.ASSIGNED.value,
            SYSTEM,
            now,
            plan.step.step_id,
            json.dumps({"decision": decision.record(trigger="new_ticket")}),
        ),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    ticket_id, task_id = row
    task = Task(
        task_id=task_id,
        ticket_id=ticket_id,
        workflow=plan.workflow,
        workflow_version_id=plan.workflow.live_version_id,
        current_step=plan.step,
        status=Task.Status.PENDING,
        created_at=now,
        updated_at=now,
        step_entered_at=now,
        step_due_at=due,
    )
    return ticket_id, task


def _log_task_created(task: Task, *, ticket_number: str, user_ids: Iterable[int]) -> None:
    logger.info(
        "Task %s created for ticket %s (workflow %s, step %s, users %s)",
        task.task_id,
        ticket_number,
        task.workflow_id,
        task.current_step_id,
        list(user_ids),
    )


# --- The task's lifecycle ------------------------------------------------------


def _locked_task(task_id: int) -> Task:
    task = (
        Task.objects.select_for_update(of=("self",))
        .select_related("workflow", "workflow_version", "current_step__role", "ticket")
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise errors.NotFound(f"Task {task_id} does not exist")
    return task


_OPEN_STATUSES = (Task.Status.PENDING, Task.Status.IN_PROGRESS, Task.Status.ON_HOLD)


def _require_open(task: Task, action: str) -> None:
    if task.status not in _OPEN_STATUSES:
        raise errors.InvalidTransition(f"Cannot {action} task {task.task_id}: it is {task.status}")


def _current_rows(task: Task) -> list[Assignment]:
    return list(Assignment.objects.filter(task=task, is_current=True).order_by("pk"))


def task_assign_user(*, task_id: int, user_data: dict, actor: str = SYSTEM) -> Task:
    """Add one user to the task's current step by hand; refuses a user already on it."""
    user_id = user_data["userID"]
    with transaction.atomic():
        task = _locked_task(task_id)
        _require_open(task, "assign users to")
        if any(row.user_id == user_id for row in _current_rows(task)):
            raise errors.Conflict(f"User {user_id} is already assigned to task {task_id}")
        now = timezone.now()
        status = user_data.get("status") or Assignment.Status.ASSIGNED
        counts = task.status in Task.ACTIVE_STATUSES and status in Assignment.OPEN_STATUSES
        row = Assignment.objects.create(
            task=task,
            step=task.current_step,
            user_id=user_id,
            role=user_data.get("role") or (task.current_step.role.name if task.current_step else ""),
            username=user_data.get("username") or "",
            email=user_data.get("email") or "",
            status=status,
            origin=Assignment.Origin.MANUAL,
            is_current=True,
            is_open=counts,
            assigned_on=now,
            status_updated_on=now,
        )
        if counts:
            _change_loads(_load_deltas([row], +1))
        _record(
            task.pk,
            Kind.ASSIGNED,
            actor=actor,
            now=now,
            step_id=task.current_step_id,
            decision={"trigger": "manual", "strategy": "manual", "role": row.role, "chosen": [user_id]},
        )
        task.save(update_fields=["updated_at"])
    logger.info("User %s assigned to task %s", user_id, task_id)
    return task


def task_update_user_status(*, task_id: int, user_id: int, new_status: str, actor: str = SYSTEM) -> Task:
    """Set one assigned user's status; a user starting work moves a pending task to in_progress.

    A completion that satisfies the step's completion policy (`any`: this one;
    `all`: every assignee of the step has completed) then moves the task on, in
    the same call, as task_move_to_next_step does: exactly one step, however
    many completions arrive at once. When the move cannot be made (nobody
    eligible on the next step, TTS down), the completion stands, the task stays
    on its step and the history says why.
    """
    if new_status not in Assignment.Status.values:
        raise errors.InvalidInput(f"{new_status!r} is not a user status")
    freed = False
    with transaction.atomic():
        task = _locked_task(task_id)
        _require_open(task, "update users of")
        row = next((row for row in _current_rows(task) if row.user_id == user_id), None)
        if row is None:
            raise errors.InvalidInput(f"User {user_id} is not assigned to task {task_id}", field="user_id")
        now = timezone.now()
        before = row.status
        opens = task.status in Task.ACTIVE_STATUSES and new_status in Assignment.OPEN_STATUSES
        if opens != row.is_open:
            _change_loads(_load_deltas([row], +1 if opens else -1))
            freed = not opens
        Assignment.objects.filter(pk=row.pk).update(status=new_status, is_open=opens, status_updated_on=now)
        update_fields = ["updated_at"]
        if new_status == Assignment.Status.IN_PROGRESS and task.status == Task.Status.PENDING:
            task.status = Task.Status.IN_PROGRESS
            update_fields.append("status")
        task.save(update_fields=update_fields)
        _record(
            task.pk,
            Kind.STATUS_CHANGED,
            actor=actor,
            now=now,
            step_id=task.current_step_id,
            user_id=user_id,
            **{"from": before, "to": new_status},
        )
        if freed:
            _wake_waiting_tickets_on_commit()
        # Decided under the task's lock: of two completions at once, the later sees the earlier.
        moves_on = new_status == Assignment.Status.COMPLETED and _step_is_done(task)
    logger.info("Task %s: user %s is now %s", task_id, user_id, new_status)
    if moves_on:
        return _move_on_by_policy(task, actor=actor)
    return task


def _step_is_done(task: Task) -> bool:
    """Whether the task's step, by its completion policy, is done now that an assignee completed."""
    step = task.current_step
    if step is None or task.status not in Task.ACTIVE_STATUSES:
        return False
    if step.completion_policy == Steps.CompletionPolicy.ANY:
        return True
    if step.completion_policy == Steps.CompletionPolicy.ALL:
        return all(row.status == Assignment.Status.COMPLETED for row in _current_rows(task))
    return False


def _move_on_by_policy(task: Task, *, actor: str) -> Task:
    step = task.current_step
    try:
        return task_move_to_next_step(task_id=task.pk, actor=actor, from_step_id=step.pk)
    except (NobodyAvailable, AllocationFailed, errors.DependencyUnavailable) as exc:
        logger.warning("Task %s stays on step %s after its completion: %s", task.pk, step.pk, exc.message)
        _record(
            task.pk,
            Kind.MOVED,
            actor=actor,
            now=timezone.now(),
            step_id=step.pk,
            outcome="stayed",
            policy=step.completion_policy,
            reason=exc.message,
        )
        return Task.objects.select_related("workflow", "current_step__role", "ticket").get(pk=task.pk)


def _release_load(task: Task) -> None:
    """The task's open assignments stop counting as load (it completed, was held or cancelled);
    tickets waiting for the places it frees are woken after commit."""
    loads: dict[tuple[int, str], int] = {}
    _close_assignments([row for row in _current_rows(task) if row.is_open], leave_step=False, loads=loads)
    _change_loads(loads)
    if loads:
        _wake_waiting_tickets_on_commit()


def _complete_locked(task: Task, *, actor: str, now: datetime) -> Task:
    task.status = Task.Status.COMPLETED
    task.save(update_fields=["status", "updated_at"])
    _release_load(task)
    _record(task.pk, Kind.COMPLETED, actor=actor, now=now, step_id=task.current_step_id)
    if task.terms.end_logic == Workflows.EndLogic.NOTIFICATION:
        payload = notification_payload(task=task)
        # robust: the task is completed either way; a broker failure is logged
        # (with the payload's ids) instead of failing a request that committed.
        transaction.on_commit(lambda: _send_notification(payload), robust=True)
    logger.info("Task %s completed (ticket %s)", task.task_id, task.ticket.ticket_number)
    return task


def task_complete(*, task_id: int, actor: str = SYSTEM) -> Task:
    """Complete an open task; with end_logic 'notification', enqueue the notification after commit."""
    with transaction.atomic():
        task = _locked_task(task_id)
        _require_open(task, "complete")
        return _complete_locked(task, actor=actor, now=timezone.now())


def _resume_status(task: Task) -> str:
    """The status the task had when it was last held (pending when the history does not say)."""
    held = (
        TaskEvent.objects.filter(task=task, kind=Kind.HELD).order_by("-id").values_list("details", flat=True)
    )
    previous = (held.first() or {}).get("from")
    return previous if previous in Task.ACTIVE_STATUSES else Task.Status.PENDING


def task_hold(*, task_id: int, reason: str, actor: str = SYSTEM) -> Task:
    """Put a pending or in-progress task on hold: its assignments stop counting as load.

    Assignees keep their statuses. Raises InvalidTransition for a task that is
    not pending or in progress.
    """
    with transaction.atomic():
        task = _locked_task(task_id)
        if task.status not in Task.ACTIVE_STATUSES:
            raise errors.InvalidTransition(f"Cannot hold task {task_id}: it is {task.status}")
        _stop_counting(task, status=Task.Status.ON_HOLD, kind=Kind.HELD, actor=actor, reason=reason)
    logger.info("Task %s held by %s", task_id, actor)
    return task


def task_resume(*, task_id: int, reason: str = "", actor: str = SYSTEM) -> Task:
    """Resume a task on hold with the status it had: its unfinished assignments count as load again.

    Raises InvalidTransition for a task that is not on hold.
    """
    with transaction.atomic():
        task = _locked_task(task_id)
        if task.status != Task.Status.ON_HOLD:
            raise errors.InvalidTransition(f"Cannot resume task {task_id}: it is {task.status}")
        now = timezone.now()
        reopened = [
            row for row in _current_rows(task) if row.status in Assignment.OPEN_STATUSES and not row.is_open
        ]
        if reopened:
            Assignment.objects.filter(pk__in=[row.pk for row in reopened]).update(is_open=True)
            _change_loads(_load_deltas(reopened, +1))
        task.status = _resume_status(task)
        update_fields = ["status", "held_at", "updated_at"]
        update_fields += _shift_deadline(task, now=now)
        task.held_at = None
        task.save(update_fields=update_fields)
        _record(
            task.pk,
            Kind.RESUMED,
            actor=actor,
            now=now,
            step_id=task.current_step_id,
            reason=reason,
            to=task.status,
        )
    logger.info("Task %s resumed by %s", task_id, actor)
    return task


def _shift_deadline(task: Task, *, now: datetime) -> list[str]:
    """Time on hold does not count against the step's deadline; returns the fields changed."""
    if task.step_due_at is None or task.held_at is None:
        return []
    # Held before entering this step (moved while on hold): only the time on this step counts.
    held_since = max(task.held_at, task.step_entered_at or task.held_at)
    task.step_due_at += max(now - held_since, timedelta(0))
    return ["step_due_at"]


STEP_ENTRY_FIELDS = ("step_entered_at", "step_due_at", "escalated_at")


def _enter_step(task: Task, step: Steps, *, now: datetime) -> None:
    """The task enters `step` now: its deadline counts from here, and it may be escalated again."""
    task.step_entered_at = now
    task.step_due_at = step.deadline(
        workflow=task.terms, ticket_priority=task.ticket.priority, entered_at=now
    )
    task.escalated_at = None


def task_cancel(*, task_id: int, reason: str, actor: str = SYSTEM) -> Task:
    """Cancel a task that is not finished: its assignments stop counting as load, for good.

    Raises InvalidTransition for a completed or cancelled task.
    """
    with transaction.atomic():
        task = _locked_task(task_id)
        _require_open(task, "cancel")
        _stop_counting(task, status=Task.Status.CANCELLED, kind=Kind.CANCELLED, actor=actor, reason=reason)
    logger.info("Task %s cancelled by %s", task_id, actor)
    return task


def _stop_counting(task: Task, *, status: str, kind: str, actor: str, reason: str) -> None:
    """Hold or cancel (locked) `task`: its load is released, its status changed and the change recorded.

    `held_at` is set by holding and cleared by cancelling.
    """
    now = timezone.now()
    previous = task.status
    _release_load(task)
    task.status = status
    task.held_at = now if status == Task.Status.ON_HOLD else None
    task.save(update_fields=["status", "held_at", "updated_at"])
    _record(
        task.pk, kind, actor=actor, now=now, step_id=task.current_step_id, reason=reason, **{"from": previous}
    )


def task_move_to_next_step(*, task_id: int, actor: str = SYSTEM, from_step_id: int | None = None) -> Task:
    """Advance to the next step by order and assign it by its strategy; from the last step, complete.

    Raises NobodyAvailable (the task stays where it is) when nobody in the
    next step's role is eligible. `from_step_id`: move only from that step; a
    task that has left it (or finished) meanwhile is returned as it is, so two
    callers moving on from one step move the task once.
    """
    task = (
        Task.objects.select_related("workflow", "workflow_version", "current_step").filter(pk=task_id).first()
    )
    if task is None:
        raise errors.NotFound(f"Task {task_id} does not exist")
    if _moved_from(task, from_step_id):
        return task
    _require_open(task, "move")
    current_order = task.current_step.order if task.current_step else 0
    if task.workflow_version is not None:
        # The version the task started on, whatever was edited since.
        next_step = task.workflow_version.step_after(current_order)
    else:
        next_step = workflow_next_step(workflow=task.workflow, after_order=current_order)
    user_ids = _step_user_ids(step=next_step) if next_step is not None else []
    # The move frees what the task's assignees hold now: the decision counts without it.
    releasing = [row for row in _current_rows(task) if row.is_open]

    for _ in range(MAX_DECISION_ROUNDS):
        try:
            with transaction.atomic():
                now = timezone.now()
                decision = None
                if next_step is not None:
                    decision, _state = _decide(
                        step=next_step, candidates=user_ids, now=now, releasing=releasing
                    )
                locked = _locked_task(task_id)
                if _moved_from(locked, from_step_id):
                    return locked
                _require_open(locked, "move")
                if locked.current_step_id != task.current_step_id:
                    raise errors.Conflict(f"Task {task_id} moved to another step meanwhile; retry")
                if decision is not None and decision.waiting:
                    raise NobodyAvailable(f"Task {task_id} stays on its step. {decision.waiting_reason()}")
                if next_step is None:
                    return _complete_locked(locked, actor=actor, now=now)
                _claim_turn(decision, now=now)
                loads: dict[tuple[int, str], int] = {}
                _close_assignments(_current_rows(locked), leave_step=True, loads=loads)
                previous_step_id = locked.current_step_id
                locked.current_step = next_step
                _enter_step(locked, next_step, now=now)
                locked.save(update_fields=["current_step", *STEP_ENTRY_FIELDS, "updated_at"])
                _record(
                    locked.pk,
                    Kind.MOVED,
                    actor=actor,
                    now=now,
                    step_id=next_step.pk,
                    from_step=previous_step_id,
                )
                _store_decision(
                    task=locked,
                    step=next_step,
                    decision=decision,
                    origin=decision.strategy,
                    trigger="next_step",
                    kind=Kind.ASSIGNED,
                    actor=actor,
                    now=now,
                    loads=loads,
                )
                _change_loads(loads)
        except _TurnTaken:
            continue
        _wake_waiting_tickets_on_commit()
        logger.info("Task %s moved to step %s (users %s)", task_id, next_step.step_id, list(decision.chosen))
        return locked
    raise errors.Conflict(f"Task {task_id}: too many concurrent decisions in its role; retry")


def _moved_from(task: Task, from_step_id: int | None) -> bool:
    return from_step_id is not None and (
        task.current_step_id != from_step_id or task.status not in _OPEN_STATUSES
    )


# --- Reassignment --------------------------------------------------------------


def task_reassign(
    *,
    task_id: int,
    from_user_id: int,
    to_user_id: int | None = None,
    actor: str = SYSTEM,
    require_status: str | None = None,
) -> Task:
    """Move one assignee's place on the task's current step to another user of the step's role.

    Without `to_user_id`, the step's strategy picks (skipping users already on
    the step). Raises InvalidInput when `from_user_id` holds no current
    assignment or `to_user_id` is not in the role or already on the step, and
    NobodyAvailable when the strategy finds nobody.
    """
    task = Task.objects.select_related("current_step__role").filter(pk=task_id).first()
    if task is None:
        raise errors.NotFound(f"Task {task_id} does not exist")
    _require_open(task, "reassign")
    step = task.current_step
    if step is None:
        raise errors.InvalidTransition(f"Task {task_id} has no current step")
    candidates = tts.get_role_user_ids(step.role.name)
    if to_user_id is not None and to_user_id not in candidates:
        raise errors.InvalidInput(f"User {to_user_id} is not in role {step.role.name!r}", field="to_user_id")

    for _ in range(MAX_DECISION_ROUNDS):
        try:
            with transaction.atomic():
                now = timezone.now()
                # The role's rotation first, then the task: the lock order of every path.
                state = None
                if to_user_id is None:
                    state = assignment.read_role_state(role=step.role.name, user_ids=candidates, lock=True)
                locked = _locked_task(task_id)
                _require_open(locked, "reassign")
                if locked.current_step_id != step.pk:
                    raise errors.Conflict(f"Task {task_id} moved to another step meanwhile; retry")
                rows = _current_rows(locked)
                on_step = frozenset(row.user_id for row in rows)
                if from_user_id not in on_step:
                    raise errors.InvalidInput(
                        f"User {from_user_id} is not assigned to task {task_id}", field="from_user_id"
                    )
                if to_user_id is not None:
                    if to_user_id in on_step:
                        raise errors.InvalidInput(
                            f"User {to_user_id} is already assigned to task {task_id}", field="to_user_id"
                        )
                    decision = _manual_decision(step=step, candidates=candidates, user_id=to_user_id)
                else:
                    decision, _state = _decide(
                        step=step, candidates=candidates, now=now, exclude=on_step, take=1, state=state
                    )
                    if decision.waiting:
                        raise NobodyAvailable(
                            f"User {from_user_id} keeps task {task_id}. {decision.waiting_reason()}"
                        )
                    _claim_turn(decision, now=now)
                leaving = next(row for row in rows if row.user_id == from_user_id)
                if require_status is not None and leaving.status != require_status:
                    raise errors.InvalidTransition(
                        f"User {from_user_id}'s assignment on task {task_id} is {leaving.status} now"
                    )
                frees = leaving.is_open
                loads: dict[tuple[int, str], int] = {}
                _close_assignments([leaving], leave_step=True, loads=loads)
                _store_decision(
                    task=locked,
                    step=step,
                    decision=decision,
                    origin=Assignment.Origin.REASSIGNED,
                    trigger="reassignment",
                    kind=Kind.REASSIGNED,
                    actor=actor,
                    now=now,
                    extra={"from_user_id": from_user_id, "to_user_id": decision.chosen[0]},
                    loads=loads,
                )
                _change_loads(loads)
                locked.save(update_fields=["updated_at"])
                if frees:
                    _wake_waiting_tickets_on_commit()
        except _TurnTaken:
            continue
        logger.info("Task %s: user %s reassigned to %s", task_id, from_user_id, decision.chosen[0])
        return locked
    raise errors.Conflict(f"Task {task_id}: too many concurrent decisions in its role; retry")


def _manual_decision(*, step: Steps, candidates: list[int], user_id: int) -> Decision:
    return Decision.given(
        strategy="manual", role=step.role.name, candidates=tuple(candidates), chosen=(user_id,)
    )


def users_unavailable_with_work_not_started() -> list[int]:
    """Unavailable users who still hold not-started assignments on open tasks (for the sweeper).

    Their reassignment was missed: a decision made while they became
    unavailable, TTS down during the reassignment, or a broker error on enqueue.
    """
    now = timezone.now()
    unavailable = UserAvailability.objects.filter(status=UserAvailability.Status.UNAVAILABLE).filter(
        Q(until__isnull=True) | Q(until__gt=now)
    )
    return list(
        Assignment.objects.filter(
            user_id__in=unavailable.values("user_id"),
            is_current=True,
            status=Assignment.Status.ASSIGNED,
            task__status__in=_OPEN_STATUSES,
        )
        .order_by("user_id")
        .values_list("user_id", flat=True)
        .distinct()
    )


def task_reassign_from_unavailable_user(*, user_id: int) -> dict:
    """Move an unavailable user's not-started assignments on open tasks to the next eligible users.

    An assignment for which nobody is eligible stays, and the task's history
    says why. Returns how many moved and how many stayed.
    """
    if connection.vendor == "postgresql":
        # Decisions in flight hold their role's rotation lock until they commit;
        # one that read this user as available before the change has stored
        # what it decided once this lock is granted.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {RoundRobinState._meta.db_table} FOR SHARE")
    rows = list(
        Assignment.objects.filter(
            user_id=user_id,
            is_current=True,
            status=Assignment.Status.ASSIGNED,
            task__status__in=_OPEN_STATUSES,
        ).values_list("task_id", flat=True)
    )
    moved = kept = 0
    for task_id in rows:
        try:
            task_reassign(task_id=task_id, from_user_id=user_id, require_status=Assignment.Status.ASSIGNED)
            moved += 1
        except (NobodyAvailable, errors.DependencyUnavailable) as exc:
            kept += 1
            _record(
                task_id,
                Kind.REASSIGNED,
                actor=SYSTEM,
                now=timezone.now(),
                step_id=Task.objects.filter(pk=task_id).values_list("current_step_id", flat=True).first(),
                from_user_id=user_id,
                to_user_id=None,
                outcome="kept",
                reason=exc.message,
            )
        except (errors.InvalidInput, errors.InvalidTransition, errors.Conflict):
            continue  # started, moved or finished meanwhile: nothing to move
    logger.info("User %s unavailable: %s assignment(s) moved, %s kept", user_id, moved, kept)
    return {"moved": moved, "kept": kept}


# --- Escalation of overdue steps --------------------------------------------------

Escalation = Steps.Escalation


def tasks_due_for_escalation(*, now: datetime, limit: int) -> list[int]:
    """Pending or in-progress tasks past their step's deadline, not escalated since entering the step."""
    return list(
        Task.objects.filter(status__in=Task.ACTIVE_STATUSES, step_due_at__lte=now, escalated_at__isnull=True)
        .exclude(current_step__escalation=Escalation.NONE)
        .order_by("step_due_at")
        .values_list("pk", flat=True)[:limit]
    )


def task_escalate_overdue(*, now: datetime | None = None) -> int:
    """Escalate every task due for it (at most SLA_CHECK_BATCH); returns how many this call escalated."""
    now = now or timezone.now()
    escalated = 0
    for task_id in tasks_due_for_escalation(now=now, limit=settings.SLA_CHECK_BATCH):
        escalated += task_escalate(task_id=task_id, now=now)
    if escalated:
        logger.info("%s overdue task(s) escalated", escalated)
    return escalated


def task_escalate(*, task_id: int, now: datetime | None = None) -> bool:
    """Apply the current step's escalation to an overdue task; False when it is not due (any more).

    Once per entry into a step, whatever the number of processes: the task is
    claimed by a conditional UPDATE of `escalated_at` before anything is done.
    A notification is claimed, recorded and sent in one transaction; a
    reassignment or an escalation to a role is claimed first and done after,
    so a worker dying in between leaves the step claimed and not escalated
    (at most once, never twice). What was done, or why nothing could be, is
    recorded in the task's history (`escalated`).
    """
    now = now or timezone.now()
    task = (
        Task.objects.select_related(
            "workflow", "ticket", "current_step__role", "current_step__escalation_role"
        )
        .filter(pk=task_id)
        .first()
    )
    step = task.current_step if task is not None else None
    if step is None or step.escalation == Escalation.NONE or task.step_due_at is None:
        return False
    claim = Task.objects.filter(
        pk=task_id,
        current_step_id=step.pk,
        step_entered_at=task.step_entered_at,
        status__in=Task.ACTIVE_STATUSES,
        step_due_at__lte=now,
        escalated_at__isnull=True,
    )
    late = max(now - task.step_due_at, timedelta(0))
    facts = {
        "policy": step.escalation,
        "due_at": _iso(task.step_due_at),
        "late_seconds": int(late.total_seconds()),
    }
    if step.escalation == Escalation.NOTIFY:
        with transaction.atomic():
            if not claim.update(escalated_at=now):
                return False
            payload = _overdue_payload(task=task, step=step, late=late, now=now)
            _record(
                task_id, Kind.ESCALATED, actor=SYSTEM, now=now, step_id=step.pk, **facts, outcome="notified"
            )
            transaction.on_commit(lambda: _send_notification(payload), robust=True)
            transaction.on_commit(
                lambda: metrics.count("escalations_total", policy=step.escalation, outcome="notified")
            )
        return True
    if not claim.update(escalated_at=now):
        return False
    try:
        if step.escalation == Escalation.REASSIGN:
            outcome = _escalate_by_reassigning(task=task)
        else:
            outcome = _escalate_to_role(task=task, step=step)
    except (NobodyAvailable, AllocationFailed, errors.DependencyUnavailable) as exc:
        outcome = {"outcome": "nobody", "reason": exc.message}
    _record(task_id, Kind.ESCALATED, actor=SYSTEM, now=timezone.now(), step_id=step.pk, **facts, **outcome)
    metrics.count("escalations_total", policy=step.escalation, outcome=outcome["outcome"])
    logger.info("Task %s escalated on step %s: %s", task_id, step.pk, outcome["outcome"])
    return True


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _overdue_payload(*, task: Task, step: Steps, late: timedelta, now: datetime) -> dict:
    """What the notification service receives when a step with escalation 'notify' is overdue."""
    return {
        "event": "step_overdue",
        "task_id": task.task_id,
        "ticket_id": task.ticket_id,
        "ticket_number": task.ticket.ticket_number,
        "ticket_subject": task.ticket.subject,
        "ticket_priority": task.ticket.priority,
        "workflow_id": task.workflow_id,
        "workflow_name": task.workflow.name,
        "step_id": step.step_id,
        "step_name": step.name,
        "users": task.users,
        "step_due_at": _iso(task.step_due_at),
        "overdue_seconds": int(late.total_seconds()),
        "escalated_at": _iso(now),
    }


def _escalate_by_reassigning(*, task: Task) -> dict:
    """The assignees who have not started move to the next eligible users of the step's role."""
    not_started = [row.user_id for row in _current_rows(task) if row.status == Assignment.Status.ASSIGNED]
    if not not_started:
        return {"outcome": "nobody", "reason": "Every assignee of the step has started or finished"}
    moved: list[int] = []
    kept: list[dict] = []
    for user_id in not_started:
        try:
            task_reassign(task_id=task.pk, from_user_id=user_id, require_status=Assignment.Status.ASSIGNED)
            moved.append(user_id)
        except (NobodyAvailable, AllocationFailed, errors.DependencyUnavailable) as exc:
            kept.append({"user_id": user_id, "reason": exc.message})
        except (errors.InvalidInput, errors.InvalidTransition, errors.Conflict):
            continue  # started, moved or finished meanwhile
    if not moved:
        reason = kept[0]["reason"] if kept else "The assignees started, moved or finished meanwhile"
        return {"outcome": "nobody", "reason": reason, "kept": kept}
    return {"outcome": "reassigned", "moved_user_ids": moved, "kept": kept}


def _escalate_to_role(*, task: Task, step: Steps) -> dict:
    """Up to the step's assignee count of users of the escalation role join the step, by the engine."""
    role = step.escalation_role
    if role is None:
        return {"outcome": "nobody", "reason": "The step names no escalation role"}
    candidates = _step_user_ids(step=Steps(role=role))
    # The engine decides for the escalation role by the step's strategy and count; the
    # assignments belong to the step.
    deciding = Steps(
        workflow_id=step.workflow_id,
        role=role,
        assignment_strategy=step.assignment_strategy,
        max_assignees=step.max_assignees,
    )
    for _ in range(MAX_DECISION_ROUNDS):
        try:
            with transaction.atomic():
                now = timezone.now()
                on_step = frozenset(
                    Assignment.objects.filter(task_id=task.pk, is_current=True).values_list(
                        "user_id", flat=True
                    )
                )
                decision, _state = _decide(step=deciding, candidates=candidates, now=now, exclude=on_step)
                if decision.waiting:
                    raise NobodyAvailable(decision.waiting_reason())
                locked = _locked_task(task.pk)
                if locked.current_step_id != step.pk or locked.status not in Task.ACTIVE_STATUSES:
                    return {
                        "outcome": "skipped",
                        "reason": f"The task is {locked.status} or moved on meanwhile",
                    }
                if {row.user_id for row in _current_rows(locked)} != on_step:
                    raise _TurnTaken  # the step's assignees changed meanwhile: decide again
                _claim_turn(decision, now=now)
                loads: dict[tuple[int, str], int] = {}
                _store_decision(
                    task=locked,
                    step=step,
                    decision=decision,
                    origin=Assignment.Origin.ESCALATED,
                    trigger="escalation",
                    kind=Kind.ASSIGNED,
                    actor=SYSTEM,
                    now=now,
                    loads=loads,
                )
                _change_loads(loads)
                locked.save(update_fields=["updated_at"])
        except _TurnTaken:
            continue
        return {"outcome": "escalated_to_role", "role": role.name, "added_user_ids": list(decision.chosen)}
    raise errors.Conflict(f"Task {task.pk}: too many concurrent decisions in role {role.name!r}; retry")


# --- Availability --------------------------------------------------------------

_UNSET = object()


def availability_set(
    *,
    user_id: int,
    actor: str,
    status: str | object = _UNSET,
    until: datetime | None | object = _UNSET,
    max_open_assignments: int | None | object = _UNSET,
) -> UserAvailability:
    """Change a user's availability (only the fields given) and record the change.

    A user becoming unavailable has their not-started assignments moved to
    others; a user becoming available, or given more capacity, lets waiting
    tickets be allocated. Both happen after commit, in a Celery task.
    """
    from task import tasks as task_tasks

    if status is not _UNSET and status not in UserAvailability.Status.values:
        raise errors.InvalidInput(f"{status!r} is not an availability status", field="status")
    if status is not _UNSET and until is _UNSET:
        until = None  # a new status holds until said otherwise, not until an old `until`
    now = timezone.now()
    with transaction.atomic():
        row = UserAvailability.objects.select_for_update().filter(user_id=user_id).first()
        if row is None:
            # Users without a row are available without limit: a row is written only for a change.
            row = UserAvailability(user_id=user_id)
        before = assignment.Availability(row.status, row.until, row.max_open_assignments)
        changes = {}
        for name, value in (
            ("status", status),
            ("until", until),
            ("max_open_assignments", max_open_assignments),
        ):
            if value is not _UNSET and getattr(row, name) != value:
                changes[name] = [_jsonable(getattr(row, name)), _jsonable(value)]
                setattr(row, name, value)
        if not changes:
            return row
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            raise errors.Conflict(f"User {user_id}'s availability was changed meanwhile; retry") from None
        AvailabilityChange.objects.create(user_id=user_id, changed_by=actor, changed_at=now, changes=changes)
        after = assignment.Availability(row.status, row.until, row.max_open_assignments)
        was, now_is = before.status_at(now), after.status_at(now)
        if now_is == UserAvailability.Status.UNAVAILABLE and was != now_is:
            transaction.on_commit(
                lambda: task_tasks.reassign_from_unavailable_user.apply_async(
                    (user_id,), queue=settings.WORKFLOW_TASKS_QUEUE
                ),
                robust=True,
            )
        more_capacity = before.max_open is not None and (
            after.max_open is None or after.max_open > before.max_open
        )
        if (now_is != UserAvailability.Status.UNAVAILABLE and was != now_is) or more_capacity:
            _wake_waiting_tickets_on_commit()
    logger.info("User %s availability changed by %s: %s", user_id, actor, sorted(changes))
    return row


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def availability_started_assignments(*, user_id: int) -> list[dict]:
    """The user's started (in progress) assignments on open tasks: work a lead may want to move by hand."""
    return [
        {"task_id": task_id, "step_id": step_id, "role": role}
        for task_id, step_id, role in Assignment.objects.filter(
            user_id=user_id,
            is_current=True,
            status=Assignment.Status.IN_PROGRESS,
            task__status__in=_OPEN_STATUSES,
        )
        .order_by("task_id")
        .values_list("task_id", "step_id", "role")
    ]


# --- Waking tickets that wait for someone ----------------------------------------


def _wake_waiting_tickets_on_commit() -> None:
    """After this transaction commits, allocate tickets waiting for an available user, if any wait."""
    from tickets import services as ticket_services
    from tickets import tasks as ticket_tasks

    def wake() -> None:
        if ticket_services.ticket_any_waiting():
            ticket_tasks.allocate_waiting_tickets.apply_async(queue=settings.WORKFLOW_TASKS_QUEUE)

    transaction.on_commit(wake, robust=True)


# --- Notifications -------------------------------------------------------------


def notification_payload(*, task: Task) -> dict:
    """What the notification service receives when a task with end_logic 'notification' completes."""
    return {
        "event": "task_completed",
        "task_id": task.task_id,
        "ticket_id": task.ticket_id,
        "ticket_number": task.ticket.ticket_number,
        "ticket_subject": task.ticket.subject,
        "workflow_id": task.workflow_id,
        "workflow_name": task.workflow.name,
        "users": task.users,
        "completed_at": _utc_now_iso(),
    }


def _send_notification(payload: dict) -> None:
    celery_app.send_task(
        settings.NOTIFICATION_TASK_NAME,
        args=[payload],
        queue=settings.NOTIFICATION_TASKS_QUEUE,
    )
    logger.info("Notification %s queued for task %s", payload["event"], payload["task_id"])
