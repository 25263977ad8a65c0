"""Reads over assignment rows are served by their indexes, and the rows came from the JSON lists."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from conftest import make_workflow
from task import selectors
from task.models import Assignment, Task
from tickets.models import WorkflowTicket
from workflow.models import Roles

ASSIGNED_ON = datetime(2025, 11, 10, 14, 30, tzinfo=UTC)

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="query plans and the migration test are PostgreSQL's; CI runs them there",
)


@needs_postgresql
@pytest.mark.django_db
def test_a_non_staff_task_list_is_served_by_the_assignment_index():
    workflow = make_workflow(steps=[Roles.objects.create(name="Agent")])
    step = workflow.steps.get()
    tickets = WorkflowTicket.objects.bulk_create(
        WorkflowTicket(ticket_number=f"TX{n}", subject="s", is_task_allocated=True) for n in range(20_000)
    )
    tasks = Task.objects.bulk_create(Task(ticket=t, workflow=workflow, current_step=step) for t in tickets)
    Assignment.objects.bulk_create(
        Assignment(
            task=task,
            step=step,
            user_id=1 + (n * 3 + k) % 1000,
            role="Agent",
            origin="round_robin",
            assigned_on=ASSIGNED_ON,
            status_updated_on=ASSIGNED_ON,
        )
        for n, task in enumerate(tasks)
        for k in range(3)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    page = selectors.tasks_assigned_to(Task.objects.order_by("-task_id"), user_id=7)[:50]
    plan = page.explain()

    assert "assignment_user_task_idx" in plan, plan
    assert "Seq Scan on task_assignment" not in plan, plan
    assert len(page) == 50


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_data_migration_moves_users_into_rows_and_its_reverse_moves_them_back():
    before = [("task", "0001_initial"), ("workflow", "0002_routing_version")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    old_task = apps.get_model("task", "Task")
    old_ticket = apps.get_model("tickets", "WorkflowTicket")
    workflow = apps.get_model("workflow", "Workflows").objects.create(name="W", department="D", category="C")
    role = apps.get_model("workflow", "Roles").objects.create(name="Agent")
    step = apps.get_model("workflow", "Steps").objects.create(workflow=workflow, role=role, name="s", order=1)
    users = [
        {"userID": 3, "status": "in_progress", "assigned_on": "2025-11-10T14:30:00Z", "role": "Agent"},
        {
            "userID": 6,
            "status": "assigned",
            "assigned_on": "2025-11-10T14:30:00Z",
            "role": "Agent",
            "email": "a@b.c",
        },
    ]
    good = old_task.objects.create(
        ticket=old_ticket.objects.create(ticket_number="TX1", subject="s"),
        workflow=workflow,
        current_step=step,
        users=users,
    )
    # What an admin edit once wrote: no real entry, nothing to move, no failure.
    broken = old_task.objects.create(
        ticket=old_ticket.objects.create(ticket_number="TX2", subject="s"),
        workflow=workflow,
        current_step=step,
        users={"who": "nobody"},
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    moved = Task.objects.get(pk=good.pk)
    assert moved.users == users
    assert Task.objects.get(pk=broken.pk).users == []
    assert Assignment.objects.get(user_id=3).is_open

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    assert apps.get_model("task", "Task").objects.get(pk=good.pk).users == users

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
