"""`?overdue=true` on bench data: the tasks it lists, and a page that reads open tasks only."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from task import seeding
from task.models import Task

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="bench data and query plans are PostgreSQL's; CI runs these there",
    ),
]


def _overdue_ids() -> list[int]:
    now = timezone.now()
    return sorted(
        (
            task.pk
            for task in Task.objects.all()
            if task.status in Task.ACTIVE_STATUSES and task.step_due_at and task.step_due_at <= now
        ),
        reverse=True,
    )


def _page_query(api_client, path: str) -> tuple[dict, str]:
    """The response to `path` and the SQL that read its page of tasks."""
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(path)
    assert response.status_code == 200, response.content
    pages = [
        q["sql"]
        for q in queries
        if q["sql"].startswith('SELECT "task_task"."task_id"') and "LIMIT" in q["sql"]
    ]
    assert len(pages) == 1, [q["sql"] for q in queries]
    return response.json(), pages[0]


def test_seeded_tasks_are_due_a_day_after_their_ticket_and_the_old_open_ones_are_overdue(api_client):
    seeding.seed_bench_data(tasks=40, users=5, per_day=24)

    for task in Task.objects.all():
        assert task.step_entered_at == task.created_at
        assert task.step_due_at == task.created_at + seeding.BENCH_SLA
        assert (task.held_at is not None) == (task.status == Task.Status.ON_HOLD)
    # 24 a day, the newest now: the 24 newest are within their day.
    expected = _overdue_ids()
    assert len(expected) == 8  # 16 older than a day, half of them open

    body, _ = _page_query(api_client, "/tasks/api/tasks/?overdue=true&page_size=50")

    assert [task["task_id"] for task in body["results"]] == expected
    assert all(task["is_overdue"] for task in body["results"])
    assert body["count"] == 8


def test_an_overdue_page_reads_the_open_tasks_index_when_few_are_overdue(api_client):
    seeding.seed_bench_data(tasks=20_000, users=400, per_day=300)
    # A healthy helpdesk: of the open tasks, only the oldest few are late.
    open_tasks = Task.objects.filter(status__in=Task.ACTIVE_STATUSES)
    late = list(open_tasks.order_by("task_id").values_list("pk", flat=True)[:60])
    open_tasks.exclude(pk__in=late).update(step_due_at=timezone.now() + timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) task_task")

    first, sql = _page_query(api_client, "/tasks/api/tasks/?overdue=true&page_size=50")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "task_open_due_idx" in plan, plan
    assert "task_task_pkey" not in plan, plan
    assert [task["task_id"] for task in first["results"]] == sorted(late, reverse=True)[:50]
    assert first["count"] == 60
    second = api_client.get(first["next"]).json()
    assert [task["task_id"] for task in second["results"]] == sorted(late, reverse=True)[50:]
    assert second["next"] is None
