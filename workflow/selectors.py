"""Reads over workflow configuration."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Case, Exists, IntegerField, Q, Value, When

from workflow.models import RoutingVersion, Steps, Workflows

# Per process, never shared: (department, category, sub_category) ->
# (routing version, workflow, first step with its role). Entries are used only
# while the database's routing version is the one they were read at.
_ROUTES: dict[tuple[str, str, str], tuple[int, Workflows, Steps]] = {}
_ROUTES_MAX = 1024


@dataclass(frozen=True)
class WorkflowMatch:
    """The workflow a ticket's fields route to, and how: `exact`, `fallback` or `none`."""

    kind: str
    workflow: Workflows | None


def match_workflow(department: str, category: str, sub_category: str | None = None) -> WorkflowMatch:
    """The published, deployed workflow for a ticket: exact match first, then department + category.

    Deterministic: among several exact matches the oldest wins; in the fallback a
    workflow with a blank sub_category (the generic one) wins over specific ones.
    `exact`: the workflow's sub category is the ticket's (both blank included);
    `fallback`: another workflow of the department and category.
    """
    live = Workflows.objects.filter(
        department=department,
        category=category,
        is_published=True,
        status=Workflows.Status.DEPLOYED,
    )
    if sub_category:
        exact = live.filter(sub_category=sub_category).order_by("workflow_id").first()
        if exact is not None:
            return WorkflowMatch(kind="exact", workflow=exact)
    found = (
        live.annotate(
            is_specific=Case(
                When(sub_category="", then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("is_specific", "workflow_id")
        .first()
    )
    if found is None:
        return WorkflowMatch(kind="none", workflow=None)
    return WorkflowMatch(
        kind="exact" if found.sub_category == (sub_category or "") else "fallback", workflow=found
    )


def find_matching_workflow(
    department: str, category: str, sub_category: str | None = None
) -> Workflows | None:
    """The workflow match_workflow finds, or None."""
    return match_workflow(department, category, sub_category).workflow


def workflow_first_step(*, workflow: Workflows) -> Steps | None:
    return workflow.steps.select_related("role").order_by("order").first()


def workflow_next_step(*, workflow: Workflows, after_order: int) -> Steps | None:
    return workflow.steps.select_related("role").filter(order__gt=after_order).order_by("order").first()


@dataclass(frozen=True)
class TicketRoute:
    """Where a ticket goes: its workflow and that workflow's first step, None for what is missing."""

    workflow: Workflows | None
    step: Steps | None
    # The routing version the route was read at, which the write using it
    # confirms (route_still_current); None when it cannot be confirmed.
    version: int | None = None


def ticket_route(*, department: str, category: str, sub_category: str, use_cache: bool = True) -> TicketRoute:
    """The ticket's route, from this process's cache when it holds one (no query), else looked up.

    A route may be stale by the time it is used: the caller writes with
    route_still_current() in the same statement and, when that matches
    nothing, routes again with use_cache=False (a look-up it does not confirm).
    """
    key = (department, category, sub_category)
    if use_cache and (cached := _ROUTES.get(key)) is not None:
        version, workflow, step = cached
        return TicketRoute(workflow=workflow, step=step, version=version)
    if not use_cache:
        # The caller found the cached route stale: the next ticket reads it afresh, and caches that.
        _ROUTES.pop(key, None)
    # Read before the route: a change committed in between leaves the route
    # labelled with an older version, so the write refuses it.
    version = _routing_version() if use_cache else None
    workflow = find_matching_workflow(department, category, sub_category)
    step = workflow_first_step(workflow=workflow) if workflow is not None else None
    if version is not None and step is not None:
        if len(_ROUTES) >= _ROUTES_MAX:
            _ROUTES.clear()
        _ROUTES[key] = (version, workflow, step)
    return TicketRoute(workflow=workflow, step=step, version=version)


def _routing_version() -> int | None:
    # Only PostgreSQL keeps the version current (triggers of migration 0002).
    if connection.vendor != "postgresql":
        return None
    return RoutingVersion.objects.filter(pk=1).values_list("version", flat=True).first()


def forget_routes() -> None:
    """Empty this process's route cache."""
    _ROUTES.clear()


def route_is_current(route: TicketRoute) -> bool:
    """Whether routing is unchanged since the route was read (one query); True when that cannot be told."""
    if route.version is None:
        return True
    return RoutingVersion.objects.filter(pk=1, version=route.version).exists()


def route_still_current_sql(route: TicketRoute) -> tuple[str, list]:
    """route_still_current as an SQL condition and its parameters, for statements written by hand."""
    if route.version is None:
        return "TRUE", []
    table = RoutingVersion._meta.db_table
    return f"EXISTS (SELECT 1 FROM {table} WHERE id = 1 AND version = %s)", [route.version]


def route_still_current(route: TicketRoute) -> Q:
    """A filter that holds only while no role, workflow or step has changed since the route was read."""
    if route.version is None:
        return Q()
    return Q(Exists(RoutingVersion.objects.filter(pk=1, version=route.version)))
