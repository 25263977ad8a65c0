"""Reads over tasks that are more than a filter."""

from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet

from task.models import Assignment, Task


def task_statistics() -> dict:
    """Counts of tasks by status, overall and per workflow."""
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


def tasks_assigned_to(queryset: QuerySet[Task], *, user_id: int) -> QuerySet[Task]:
    """The tasks among `queryset` on which the user holds or held an assignment, on any step.

    One SQL condition, served by the assignments' (user_id, task) index, so
    pagination and query counts stay as for an unfiltered list.
    """
    return queryset.filter(Exists(Assignment.objects.filter(task=OuterRef("pk"), user_id=user_id)))


def with_current_assignments(queryset: QuerySet[Task]) -> QuerySet[Task]:
    """`queryset` with each task's current assignments loaded in one more query (Task.users reads them)."""
    return queryset.prefetch_related(
        Prefetch(
            "assignments",
            queryset=Assignment.objects.filter(is_current=True).order_by("pk"),
            to_attr="_prefetched_current_assignments",
        )
    )
