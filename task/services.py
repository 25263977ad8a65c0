"""Task creation, assignment and lifecycle: every write to a Task goes through here."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from task import tts
from task.models import RoundRobinState, Task
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
from workflow_api import errors
from workflow_api.celery import app as celery_app

logger = logging.getLogger(__name__)

AllocationError = WorkflowTicket.AllocationError


class AllocationFailed(errors.Conflict):
    """A ticket cannot get a task as things stand (no workflow, no steps, no users)."""

    def __init__(self, message: str, *, reason: AllocationError) -> None:
        super().__init__(message, code=reason.value)
        self.reason = reason


def _utc_now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _round_robin_upsert_sql(rows: str) -> str:
    """The cursor upsert, given `rows` that supply (role_name, next_index, updated_at) with three
    parameters; three more follow for the update: user count, take, user count."""
    table = RoundRobinState._meta.db_table
    return (
        f"INSERT INTO {table} (role_name, next_index, updated_at) {rows} "
        f"ON CONFLICT (role_name) DO UPDATE SET "
        f"next_index = ({table}.next_index %% %s + %s) %% %s, updated_at = excluded.updated_at "
        f"RETURNING next_index"
    )


def _advance_round_robin(*, role_name: str, user_count: int, take: int) -> int:
    """Advance the role's cursor by `take` and return where this assignment starts.

    One upsert statement: it creates the row on first use and otherwise locks
    it until the surrounding transaction ends, so concurrent workers serialize
    on the role and a rolled-back task creation does not consume a turn.
    """
    sql = _round_robin_upsert_sql("VALUES (%s, %s, %s)")
    with connection.cursor() as cursor:
        cursor.execute(sql, [role_name, take % user_count, timezone.now(), user_count, take, user_count])
        (next_index,) = cursor.fetchone()
    return (next_index - take) % user_count


def apply_round_robin_assignment(user_ids: list[int], role_name: str, max_assignments: int = 3) -> list[dict]:
    """Pick up to `max_assignments` of `user_ids` for the role, continuing where the last pick stopped.

    The cursor lives in the database (shared by every worker, kept across
    restarts); call inside the transaction that stores the assignment.
    """
    if not user_ids or max_assignments <= 0:
        return []
    take = min(max_assignments, len(user_ids))
    with transaction.atomic(savepoint=False):
        start = _advance_round_robin(role_name=role_name, user_count=len(user_ids), take=take)
    assigned_on = _utc_now_iso()
    return [
        {
            "userID": user_ids[(start + offset) % len(user_ids)],
            "status": Task.UserStatus.ASSIGNED.value,
            "assigned_on": assigned_on,
            "role": role_name,
        }
        for offset in range(take)
    ]


@dataclass(frozen=True)
class Allocation:
    """Who a ticket's task goes to, settled before anything is written."""

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


def task_create_for_ticket(*, ticket_id: int, ticket: WorkflowTicket | None = None) -> tuple[Task, bool]:
    """Create the ticket's task and mark it allocated; returns (task, created).

    Idempotent: for a ticket that already has its task, returns that task and
    creates nothing. Raises NotFound, AllocationFailed, or tts.TTSUnavailable /
    tts.TTSBadResponse. `ticket`: the row as the caller has just stored it, which
    saves reading it again.
    """
    if ticket is None:
        # Not the raw payload: allocation needs only the routing fields.
        ticket = (
            WorkflowTicket.objects.filter(pk=ticket_id)
            .only("ticket_number", "department", "category", "sub_category", "is_task_allocated")
            .first()
        )
    if ticket is None:
        raise errors.NotFound(f"Ticket {ticket_id} does not exist")
    # The flag and the task are written in one transaction, so only an
    # allocated ticket needs the lookup (a task made by hand in admin is caught
    # by the constraint below).
    if ticket.is_task_allocated:
        existing = Task.objects.filter(ticket_id=ticket_id).first()
        if existing is not None:
            return existing, False

    routing = {
        "department": ticket.department,
        "category": ticket.category,
        "sub_category": ticket.sub_category,
    }
    created = _create_task(ticket=ticket, plan=task_plan_allocation(**routing))
    if created is None:
        # Routing changed between planning and writing: plan again, uncached.
        created = _create_task(ticket=ticket, plan=task_plan_allocation(**routing, use_cache=False))
    return created


def _create_task(*, ticket: WorkflowTicket, plan: Allocation) -> tuple[Task, bool] | None:
    """Create the ticket's task as planned; None when the plan's cached route turned out stale."""
    try:
        with transaction.atomic():
            # Marking the ticket first takes its row lock: concurrent deliveries
            # of one ticket queue here, and the loser's INSERT below then hits
            # one_task_per_ticket. Three statements in one transaction, no reads;
            # the first also confirms a cached route.
            marked = WorkflowTicket.objects.filter(route_still_current(plan.route), pk=ticket.pk).update(
                is_task_allocated=True,
                allocation_error=AllocationError.NONE,
                allocation_error_detail="",
                last_allocation_attempt_at=timezone.now(),
                updated_at=timezone.now(),
            )
            if not marked and plan.route.version is not None:
                return None
            users = apply_round_robin_assignment(
                plan.user_ids, plan.step.role.name, settings.ROUND_ROBIN_MAX_ASSIGNMENTS
            )
            task = Task.objects.create(
                ticket=ticket, workflow=plan.workflow, current_step=plan.step, users=users
            )
    except IntegrityError:
        # Lost the race: the rollback undid our flag and round-robin turn too.
        existing = Task.objects.filter(ticket_id=ticket.pk).first()
        if existing is None:
            raise
        return existing, False
    _log_task_created(task, ticket_number=ticket.ticket_number)
    return task, True


def can_create_with_new_ticket() -> bool:
    """Whether task_create_with_new_ticket is available: it is one PostgreSQL statement."""
    return connection.vendor == "postgresql"


def task_create_with_new_ticket(*, ticket_fields: dict, payload: object) -> tuple[int, Task] | None:
    """Store a ticket seen for the first time together with its task; returns (ticket id, task).

    One statement and one commit for the ticket row, the round-robin turn and
    the task, after TTS has answered (PostgreSQL only: can_create_with_new_ticket).
    Returns None, having written nothing, when the ticket number is already
    stored. Raises like task_plan_allocation, having written nothing.
    """
    received_at = timezone.now()
    routing = {key: ticket_fields[key] for key in ("department", "category", "sub_category")}
    plan = task_plan_allocation(**routing)
    stored = _insert_ticket_with_task(
        ticket_fields=ticket_fields, payload=payload, plan=plan, now=received_at
    )
    if stored is None and not route_is_current(plan.route):
        # Routing changed between planning and writing: plan again, uncached.
        plan = task_plan_allocation(**routing, use_cache=False)
        stored = _insert_ticket_with_task(
            ticket_fields=ticket_fields, payload=payload, plan=plan, now=received_at
        )
    if stored is not None:
        ticket_id, task = stored
        logger.info("Ticket %s created (id %s)", ticket_fields["ticket_number"], ticket_id)
        _log_task_created(task, ticket_number=ticket_fields["ticket_number"])
    return stored


def _insert_ticket_with_task(
    *, ticket_fields: dict, payload: object, plan: Allocation, now: datetime
) -> tuple[int, Task] | None:
    """The ticket row (allocated, first attempt counted), the role's round-robin turn and the task,
    in one statement: each part runs only if the one before wrote its row."""
    ticket_values = {
        **ticket_fields,
        "ticket_data": payload,
        "is_task_allocated": True,
        "allocation_attempts": 1,
        "last_allocation_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    # Every column, as the ORM would write it (model defaults for the rest).
    ticket_columns = [f for f in WorkflowTicket._meta.concrete_fields if not f.primary_key]
    ticket_params = [
        f.get_db_prep_save(ticket_values[f.name] if f.name in ticket_values else f.get_default(), connection)
        for f in ticket_columns
    ]
    created_at = timezone.now()  # the task's; `now` is when the ticket arrived
    route_check, route_params = route_still_current_sql(plan.route)
    role_name = plan.step.role.name
    user_count = len(plan.user_ids)
    take = min(settings.ROUND_ROBIN_MAX_ASSIGNMENTS, user_count)
    quote = connection.ops.quote_name
    sql = (
        f"WITH ticket AS ("
        f" INSERT INTO {WorkflowTicket._meta.db_table} ({', '.join(quote(f.column) for f in ticket_columns)})"
        f" SELECT {', '.join(['%s'] * len(ticket_columns))} WHERE {route_check}"
        f" ON CONFLICT (ticket_number) DO NOTHING RETURNING id"
        f"), turn AS ({_round_robin_upsert_sql('SELECT %s, %s, %s FROM ticket')}) "
        f"INSERT INTO {Task._meta.db_table}"
        f" (ticket_id, workflow_id, current_step_id, users, status, created_at, updated_at)"
        f" SELECT ticket.id, %s, %s, ("
        # apply_round_robin_assignment's pick, where the cursor is: `take` users from the
        # turn's start, wrapping around; start = (next_index - take) mod user count.
        f"  SELECT jsonb_agg(jsonb_build_object("
        f"   'userID', (%s::bigint[])[1 + (turn.next_index - %s + %s + k) %% %s],"
        f"   'status', %s::text, 'assigned_on', %s::text, 'role', %s::text) ORDER BY k)"
        f"  FROM generate_series(0, %s - 1) AS k"
        f" ), %s, %s, %s FROM ticket, turn "
        f"RETURNING ticket_id, task_id, users"
    )
    params = [
        *ticket_params,
        *route_params,
        *(role_name, take % user_count, now, user_count, take, user_count),
        plan.workflow.workflow_id,
        plan.step.step_id,
        *(plan.user_ids, take, user_count, user_count),
        *(Task.UserStatus.ASSIGNED.value, _utc_now_iso(), role_name, take),
        *(Task.Status.PENDING.value, created_at, created_at),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    ticket_id, task_id, users = row
    task = Task(
        task_id=task_id,
        ticket_id=ticket_id,
        workflow=plan.workflow,
        current_step=plan.step,
        users=Task._meta.get_field("users").from_db_value(users, None, connection),
        status=Task.Status.PENDING,
        created_at=created_at,
        updated_at=created_at,
    )
    return ticket_id, task


def _log_task_created(task: Task, *, ticket_number: str) -> None:
    logger.info(
        "Task %s created for ticket %s (workflow %s, step %s, users %s)",
        task.task_id,
        ticket_number,
        task.workflow_id,
        task.current_step_id,
        [entry["userID"] for entry in task.users],
    )


def _locked_task(task_id: int) -> Task:
    task = (
        Task.objects.select_for_update(of=("self",))
        .select_related("workflow", "current_step__role", "ticket")
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


def task_assign_user(*, task_id: int, user_data: dict) -> Task:
    """Add one user to the task's assignments; refuses a user already assigned."""
    with transaction.atomic():
        task = _locked_task(task_id)
        _require_open(task, "assign users to")
        user_id = user_data["userID"]
        if user_id in task.get_assigned_user_ids():
            raise errors.Conflict(f"User {user_id} is already assigned to task {task_id}")
        entry = {
            "userID": user_id,
            "status": user_data.get("status") or Task.UserStatus.ASSIGNED.value,
            "assigned_on": _utc_now_iso(),
            "role": user_data.get("role") or (task.current_step.role.name if task.current_step else ""),
        }
        for optional in ("username", "email"):
            if user_data.get(optional):
                entry[optional] = user_data[optional]
        task.users = [*task.users, entry]
        task.save(update_fields=["users", "updated_at"])
    logger.info("User %s assigned to task %s", user_id, task_id)
    return task


def task_update_user_status(*, task_id: int, user_id: int, new_status: str) -> Task:
    """Set one assigned user's status; a user starting work moves a pending task to in_progress."""
    if new_status not in Task.UserStatus.values:
        raise errors.InvalidInput(f"{new_status!r} is not a user status")
    with transaction.atomic():
        task = _locked_task(task_id)
        _require_open(task, "update users of")
        if user_id not in task.get_assigned_user_ids():
            raise errors.InvalidInput(f"User {user_id} is not assigned to task {task_id}")
        task.users = [
            {**entry, "status": new_status} if entry["userID"] == user_id else entry for entry in task.users
        ]
        update_fields = ["users", "updated_at"]
        if new_status == Task.UserStatus.IN_PROGRESS and task.status == Task.Status.PENDING:
            task.status = Task.Status.IN_PROGRESS
            update_fields.append("status")
        task.save(update_fields=update_fields)
    logger.info("Task %s: user %s is now %s", task_id, user_id, new_status)
    return task


def _complete_locked(task: Task) -> Task:
    task.status = Task.Status.COMPLETED
    task.save(update_fields=["status", "updated_at"])
    if task.workflow.end_logic == Workflows.EndLogic.NOTIFICATION:
        payload = notification_payload(task=task)
        # robust: the task is completed either way; a broker failure is logged
        # (with the payload's ids) instead of failing a request that committed.
        transaction.on_commit(lambda: _send_notification(payload), robust=True)
    logger.info("Task %s completed (ticket %s)", task.task_id, task.ticket.ticket_number)
    return task


def task_complete(*, task_id: int) -> Task:
    """Complete an open task; with end_logic 'notification', enqueue the notification after commit."""
    with transaction.atomic():
        task = _locked_task(task_id)
        _require_open(task, "complete")
        return _complete_locked(task)


def task_move_to_next_step(*, task_id: int) -> Task:
    """Advance to the next step by order and assign its role's users; from the last step, complete."""
    task = Task.objects.select_related("workflow", "current_step").filter(pk=task_id).first()
    if task is None:
        raise errors.NotFound(f"Task {task_id} does not exist")
    _require_open(task, "move")
    current_order = task.current_step.order if task.current_step else 0
    next_step = workflow_next_step(workflow=task.workflow, after_order=current_order)
    user_ids = _step_user_ids(step=next_step) if next_step is not None else []

    with transaction.atomic():
        locked = _locked_task(task_id)
        _require_open(locked, "move")
        if locked.current_step_id != task.current_step_id:
            raise errors.Conflict(f"Task {task_id} moved to another step meanwhile; retry")
        if next_step is None:
            return _complete_locked(locked)
        locked.current_step = next_step
        locked.users = apply_round_robin_assignment(
            user_ids, next_step.role.name, settings.ROUND_ROBIN_MAX_ASSIGNMENTS
        )
        locked.save(update_fields=["current_step", "users", "updated_at"])
    logger.info("Task %s moved to step %s", task_id, next_step.step_id)
    return locked


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
    logger.info("Completion notification queued for task %s", payload["task_id"])
