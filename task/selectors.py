"""Reads over tasks that are more than a filter."""

from datetime import datetime

from django.db import connection
from django.db.models import Count, Exists, F, IntegerField, Model, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from task import assignment, tts
from task.models import (
    AssigneeLoad,
    Assignment,
    AvailabilityChange,
    CandidateList,
    Task,
    TaskEvent,
    TaskStatusCount,
    UserAvailability,
    user_entry,
)
from tickets.models import WorkflowTicket
from workflow.models import Roles, Steps, Workflows, WorkflowVersion


def task_statistics() -> dict:
    """Counts of tasks by status, overall and per workflow; exact.

    On PostgreSQL they are read from TaskStatusCount (a row per workflow and
    status, kept by triggers in the transaction of every change), so the cost
    does not grow with the number of tasks; elsewhere they are counted.
    """
    if connection.vendor == "postgresql":
        rows = (
            TaskStatusCount.objects.filter(count__gt=0)
            .order_by()
            .values("workflow_id", "workflow__name", "status", "count")
        )
    else:
        rows = (
            Task.objects.order_by()
            .values("workflow_id", "workflow__name", "status")
            .annotate(count=Count("task_id"))
        )
    by_status = {value: 0 for value in Task.Status.values}
    by_workflow: dict[int, dict] = {}
    for row in rows:
        by_status[row["status"]] += row["count"]
        entry = by_workflow.setdefault(
            row["workflow_id"],
            {
                "workflow_id": row["workflow_id"],
                "workflow_name": row["workflow__name"],
                "total": 0,
                "by_status": {value: 0 for value in Task.Status.values},
            },
        )
        entry["total"] += row["count"]
        entry["by_status"][row["status"]] += row["count"]
    return {
        "total_tasks": sum(by_status.values()),
        "by_status": by_status,
        "by_workflow": sorted(by_workflow.values(), key=lambda e: e["workflow_id"]),
    }


def task_count(*, status: str | None = None, workflow_id: int | None = None) -> int | None:
    """How many tasks have this status and workflow (either may be None: any), exact, from the kept counts.

    None where counts are not kept (not PostgreSQL).
    """
    if connection.vendor != "postgresql":
        return None
    rows = TaskStatusCount.objects.all()
    if status is not None:
        rows = rows.filter(status=status)
    if workflow_id is not None:
        rows = rows.filter(workflow_id=workflow_id)
    return rows.aggregate(total=Sum("count"))["total"] or 0


def tasks_assigned_to_count(*, user_id: int, limit: int) -> int | None:
    """How many tasks the user holds or held an assignment on, if at most `limit`; else None.

    Read from the assignments' (user_id, task) index alone: no task row is visited.
    """
    ids = Assignment.objects.filter(user_id=user_id).order_by().values("task_id").distinct()
    count = ids[: limit + 1].count()
    return count if count <= limit else None


def tasks_assigned_to(queryset: QuerySet[Task], *, user_id: int) -> QuerySet[Task]:
    """The tasks among `queryset` on which the user holds or held an assignment, on any step.

    One SQL condition, served by the assignments' (user_id, task) index, so
    pagination and query counts stay as for an unfiltered list.
    """
    return queryset.filter(Exists(Assignment.objects.filter(task=OuterRef("pk"), user_id=user_id)))


def with_names(queryset: QuerySet[Task]) -> QuerySet[Task]:
    """`queryset` with the names a task shows: ticket_subject, workflow_name (and version's number),
    current_step_name/_role.

    Values, not related objects: a page builds no ticket, workflow, step or
    role instances. Subqueries rather than joins for the ticket and workflow,
    so a count over `queryset` (which selects only keys) joins nothing.
    """
    return queryset.annotate(
        ticket_number=_by_key(WorkflowTicket, "ticket_id", "ticket_number"),
        ticket_subject=_by_key(WorkflowTicket, "ticket_id", "subject"),
        workflow_name=_by_key(Workflows, "workflow_id", "name"),
        workflow_version_number=_by_key(WorkflowVersion, "workflow_version_id", "number"),
        current_step_name=F("current_step__name"),
        current_step_role=F("current_step__role__name"),
    )


def _by_key(model: type[Model], key: str, field: str) -> Subquery:
    # Without the model's default ordering: one row by primary key needs no
    # sort, which PostgreSQL would otherwise run for every task of the page.
    return Subquery(model.objects.filter(pk=OuterRef(key)).order_by().values(field))


def load_users(tasks: list[Task]) -> None:
    """Give each task its `users` (Task.users), read for all of them in one query, as values."""
    entries: dict[int, list[dict]] = {task.pk: [] for task in tasks}
    if entries:
        rows = (
            Assignment.objects.filter(task_id__in=list(entries), is_current=True)
            .order_by("pk")
            .values_list("task_id", *Assignment.USER_ENTRY_FIELDS)
        )
        for task_id, *values in rows:
            entries[task_id].append(user_entry(*values))
    for task in tasks:
        task._loaded_users = entries[task.pk]


# --- Availability --------------------------------------------------------------


def availability_entry(
    *, user_id: int, row: UserAvailability | None, open_assignments: int, now: datetime
) -> dict:
    """A user's availability as the API shows it; a user without a row is available without limit."""
    status = row.status if row else UserAvailability.Status.AVAILABLE
    until = row.until if row else None
    max_open = row.max_open_assignments if row else None
    return {
        "user_id": user_id,
        "status": status,
        "effective_status": assignment.Availability(status, until, max_open).status_at(now),
        "until": until,
        "max_open_assignments": max_open,
        "open_assignments": open_assignments,
        "updated_at": row.updated_at if row else None,
    }


def availability_of(*, user_id: int, now: datetime) -> dict:
    """One user's availability and how many open assignments they hold across roles."""
    row = UserAvailability.objects.filter(user_id=user_id).first()
    total = AssigneeLoad.objects.filter(user_id=user_id).aggregate(total=Sum("open_assignments"))["total"]
    return availability_entry(user_id=user_id, row=row, open_assignments=total or 0, now=now)


def availability_list() -> QuerySet[UserAvailability]:
    """Users with an availability row, each annotated with `open_assignments` across roles."""
    open_total = (
        AssigneeLoad.objects.filter(user_id=OuterRef("user_id"))
        .order_by()
        .values("user_id")
        .annotate(total=Sum("open_assignments"))
        .values("total")
    )
    return UserAvailability.objects.annotate(
        open_assignments=Coalesce(Subquery(open_total, output_field=IntegerField()), 0)
    ).order_by("user_id")


def availability_changes(*, user_id: int) -> QuerySet[AvailabilityChange]:
    """A user's availability changes, oldest first."""
    return AvailabilityChange.objects.filter(user_id=user_id).order_by("id")


# --- A task's history ------------------------------------------------------------


def task_history(*, task_id: int) -> list[dict]:
    """The task's events oldest first; decisions also list the candidates TTS returned.

    Decisions store their candidate list once, by digest; the lists of every
    event are read in one query.
    """
    events = list(
        TaskEvent.objects.filter(task_id=task_id)
        .order_by("id")
        .values("id", "kind", "actor", "at", "step_id", "details")
    )
    digests = {digest for event in events if (digest := _candidates_digest(event["details"]))}
    user_ids = (
        dict(CandidateList.objects.filter(digest__in=digests).values_list("digest", "user_ids"))
        if digests
        else {}
    )
    for event in events:
        digest = _candidates_digest(event["details"])
        if digest in user_ids:
            decision = event["details"]["decision"]
            event["details"] = {
                **event["details"],
                "decision": {
                    **decision,
                    "candidates": {**decision["candidates"], "user_ids": user_ids[digest]},
                },
            }
    return events


def _candidates_digest(details: object) -> str | None:
    decision = details.get("decision") if isinstance(details, dict) else None
    candidates = decision.get("candidates") if isinstance(decision, dict) else None
    digest = candidates.get("digest") if isinstance(candidates, dict) else None
    return digest if isinstance(digest, str) else None


# --- Dry runs and reports over a step's or a role's assignments -----------------


def step_next_assignees(*, step: Steps, count: int) -> dict:
    """Who the next `count` tickets reaching `step` would go to as things stand; changes nothing.

    Asks TTS once and reads the role's state once; each decision takes the
    ones before it into account, as the real decisions will. A decision that
    would wait (nobody eligible) lists no users. Raises tts.TTSUnavailable or
    tts.TTSBadResponse.
    """
    role = step.role.name
    candidates = tts.get_role_user_ids(role)
    state = assignment.read_role_state(role=role, user_ids=candidates)
    decisions = assignment.simulate(
        strategy=step.assignment_strategy,
        candidates=candidates,
        take=step.assignee_count,
        state=state,
        now=timezone.now(),
        count=count,
    )
    return {
        "step_id": step.pk,
        "strategy": step.assignment_strategy,
        "next": [
            {"position": position, "user_ids": list(decision.chosen)}
            for position, decision in enumerate(decisions, start=1)
        ],
    }


def role_assignment_report(*, role: Roles, since: datetime, until: datetime) -> dict:
    """Per user TTS lists for the role: assignments received and completed in [since, until), and open now.

    `spread` is the difference between the most and the fewest assignments
    received. Three GROUP BY queries on the role's assignments and loads,
    whatever the number of users. Raises tts.TTSUnavailable or tts.TTSBadResponse.
    """
    user_ids = tts.get_role_user_ids(role.name)
    in_role = Assignment.objects.filter(role=role.name).order_by()
    assigned = dict(
        in_role.filter(assigned_on__gte=since, assigned_on__lt=until)
        .values("user_id")
        .annotate(count=Count("id"))
        .values_list("user_id", "count")
    )
    completed = dict(
        in_role.filter(
            status=Assignment.Status.COMPLETED, status_updated_on__gte=since, status_updated_on__lt=until
        )
        .values("user_id")
        .annotate(count=Count("id"))
        .values_list("user_id", "count")
    )
    open_now = dict(AssigneeLoad.objects.filter(role=role.name).values_list("user_id", "open_assignments"))
    users = [
        {
            "user_id": user_id,
            "assigned": assigned.get(user_id, 0),
            "open": open_now.get(user_id, 0),
            "completed": completed.get(user_id, 0),
        }
        for user_id in user_ids
    ]
    figures = [user["assigned"] for user in users]
    return {
        "role": role.name,
        "since": since,
        "until": until,
        "users": users,
        "spread": max(figures) - min(figures) if figures else 0,
    }


def role_workload(*, role: Roles, count: int = 5, tts_timeout: float | None = None) -> dict:
    """A role's users now: open assignments, availability, and who the next tickets of each step would go to.

    Users are those TTS lists for the role, in its order, then anyone still
    holding open work in the role whom TTS no longer lists. When TTS does not
    answer, `tts_error` says so and only the loads are shown. Changes nothing.
    """
    now = timezone.now()
    try:
        candidates = tts.get_role_user_ids(role.name, timeout=tts_timeout)
        tts_error = ""
    except tts.DependencyUnavailable as exc:
        candidates, tts_error = [], exc.message
    loads = dict(
        AssigneeLoad.objects.filter(role=role.name, open_assignments__gt=0).values_list(
            "user_id", "open_assignments"
        )
    )
    listed = set(candidates)
    user_ids = [*candidates, *sorted(user_id for user_id in loads if user_id not in listed)]
    state = assignment.read_role_state(role=role.name, user_ids=user_ids)
    users = []
    for user_id in user_ids:
        availability = state.availability.get(user_id)
        users.append(
            {
                "user_id": user_id,
                "listed_by_tts": user_id in listed,
                "open_in_role": loads.get(user_id, 0),
                "open_in_all_roles": state.total_loads.get(user_id, 0),
                "status": availability.status_at(now) if availability else UserAvailability.Status.AVAILABLE,
                "until": availability.until if availability else None,
                "max_open_assignments": availability.max_open if availability else None,
            }
        )
    steps = []
    for step in role.steps.select_related("workflow").order_by("workflow_id", "order"):
        decisions = assignment.simulate(
            strategy=step.assignment_strategy,
            candidates=candidates,
            take=step.assignee_count,
            state=state,
            now=now,
            count=count,
        )
        steps.append({"step": step, "next": [list(decision.chosen) for decision in decisions]})
    return {"role": role.name, "tts_error": tts_error, "users": users, "steps": steps}
