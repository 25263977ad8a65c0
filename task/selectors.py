"""Reads over tasks that are more than a filter."""

from django.db import connections
from django.db.models import Count, QuerySet
from django.db.models.expressions import RawSQL

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


def tasks_assigned_to(queryset: QuerySet[Task], *, user_id: int) -> QuerySet[Task]:
    """The tasks among `queryset` whose `users` list has an entry with this `userID`.

    One SQL condition, so pagination and query counts stay as for an unfiltered list.
    """
    vendor = connections[queryset.db].vendor
    if vendor == "postgresql":
        return queryset.filter(users__contains=[{"userID": user_id}])
    if vendor == "sqlite":
        # SQLite has no JSON containment operator; search the array with json_each.
        table = Task._meta.db_table
        assigned = RawSQL(  # noqa: S611  (table name from the model; the id is a parameter)
            f"SELECT t.task_id FROM {table} t, json_each(t.users) e "
            "WHERE json_extract(e.value, '$.userID') = %s",
            [user_id],
        )
        return queryset.filter(task_id__in=assigned)
    raise NotImplementedError(f"No assignment filter for database {vendor!r}")
