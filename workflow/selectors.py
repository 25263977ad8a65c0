"""Reads over workflow configuration."""

from django.db.models import Case, IntegerField, QuerySet, Subquery, Value, When

from workflow.models import Steps, Workflows


def _matching_workflows(department: str, category: str, sub_category: str | None) -> QuerySet[Workflows]:
    """Live workflows of the department and category, best match first (see find_matching_workflow)."""
    live = Workflows.objects.filter(
        department=department,
        category=category,
        is_published=True,
        status=Workflows.Status.DEPLOYED,
    )
    # One ordering instead of two queries: exact sub_category matches first,
    # then the generic workflow (blank sub_category), then by age.
    exact_first = (
        Case(When(sub_category=sub_category, then=Value(0)), default=Value(1), output_field=IntegerField())
        if sub_category
        else Value(1, output_field=IntegerField())
    )
    return live.annotate(
        match_rank=exact_first,
        is_specific=Case(When(sub_category="", then=Value(0)), default=Value(1), output_field=IntegerField()),
    ).order_by("match_rank", "is_specific", "workflow_id")


def find_matching_workflow(
    department: str, category: str, sub_category: str | None = None
) -> Workflows | None:
    """The published, deployed workflow for a ticket: exact match first, then department + category.

    Deterministic: among several exact matches the oldest wins; in the fallback a
    workflow with a blank sub_category (the generic one) wins over specific ones.
    """
    return _matching_workflows(department, category, sub_category).first()


def matching_workflow_first_step(
    *, department: str, category: str, sub_category: str | None = None
) -> Steps | None:
    """The first step, with its workflow and role, of find_matching_workflow's workflow, in one query.

    None when there is no such workflow or it has no steps: find_matching_workflow
    and workflow_first_step tell which.
    """
    best = _matching_workflows(department, category, sub_category).values("pk")[:1]
    return (
        Steps.objects.select_related("workflow", "role")
        .filter(workflow=Subquery(best))
        .order_by("order")
        .first()
    )


def workflow_first_step(*, workflow: Workflows) -> Steps | None:
    return workflow.steps.select_related("role").order_by("order").first()


def workflow_next_step(*, workflow: Workflows, after_order: int) -> Steps | None:
    return workflow.steps.select_related("role").filter(order__gt=after_order).order_by("order").first()
