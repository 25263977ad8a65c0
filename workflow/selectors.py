"""Reads over workflow configuration."""

from django.db.models import Case, IntegerField, Value, When

from workflow.models import Steps, Workflows


def find_matching_workflow(
    department: str, category: str, sub_category: str | None = None
) -> Workflows | None:
    """The published, deployed workflow for a ticket: exact match first, then department + category.

    Deterministic: among several exact matches the oldest wins; in the fallback a
    workflow with a blank sub_category (the generic one) wins over specific ones.
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
            return exact
    return (
        live.annotate(
            is_specific=Case(
                When(sub_category="", then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("is_specific", "workflow_id")
        .first()
    )


def workflow_first_step(*, workflow: Workflows) -> Steps | None:
    return workflow.steps.select_related("role").order_by("order").first()


def workflow_next_step(*, workflow: Workflows, after_order: int) -> Steps | None:
    return workflow.steps.select_related("role").filter(order__gt=after_order).order_by("order").first()
