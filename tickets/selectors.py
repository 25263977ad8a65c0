"""Reads over tickets that are more than a filter."""

from datetime import datetime

from django.db.models import Count, Min

from tickets.models import WorkflowTicket


def unallocated_by_reason(*, now: datetime) -> list[dict]:
    """Tickets without a task, per allocation error (blank: no outcome recorded yet), most first.

    Each entry: `reason` (the code), `label`, `count`, `oldest` (creation time of
    the oldest such ticket) and `oldest_age_seconds`. One GROUP BY query.
    """
    rows = (
        WorkflowTicket.objects.filter(is_task_allocated=False)
        .values("allocation_error")
        .annotate(count=Count("id"), oldest=Min("created_at"))
        .order_by("-count", "allocation_error")
    )
    labels = dict(WorkflowTicket.AllocationError.choices)
    return [
        {
            "reason": row["allocation_error"],
            "label": labels.get(row["allocation_error"], row["allocation_error"])
            if row["allocation_error"]
            else "No outcome recorded yet (being allocated, or its message was lost)",
            "count": row["count"],
            "oldest": row["oldest"],
            "oldest_age_seconds": max(0, int((now - row["oldest"]).total_seconds())),
        }
        for row in rows
    ]
