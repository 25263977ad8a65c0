"""Reads over tasks that are more than a filter."""

from django.db.models import Count

from task.models import Task


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
