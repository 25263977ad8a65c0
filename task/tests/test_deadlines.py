"""Step deadlines: when a task gets one, how priority picks the SLA, time on hold, and the API's view."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from conftest import make_workflow, ticket_payload
from task import services
from task.models import Task
from task.tests.conftest import assignment, make_task
from tickets import tasks as ticket_tasks
from tickets.models import WorkflowTicket
from workflow.models import Steps

pytestmark = pytest.mark.django_db

TASKS = "/tasks/api/tasks/"
HOUR = timedelta(hours=1)
ROLE = "IT Support Technician"


@pytest.fixture
def sla_workflow(role, manager):
    return make_workflow(
        name="With SLAs",
        steps=[role, manager],
        urgent_sla=1 * HOUR,
        high_sla=4 * HOUR,
        medium_sla=8 * HOUR,
        low_sla=24 * HOUR,
    )


def due_in(task: Task) -> timedelta:
    return task.step_due_at - task.step_entered_at


@pytest.mark.parametrize(
    ("priority", "sla"),
    [
        ("Critical", 1 * HOUR),
        ("urgent", 1 * HOUR),
        ("HIGH", 4 * HOUR),
        ("Medium", 8 * HOUR),
        ("low", 24 * HOUR),
        ("Whenever", 8 * HOUR),
        ("", 8 * HOUR),
    ],
)
def test_a_tickets_priority_picks_the_workflows_sla_case_insensitively(sla_workflow, priority, sla):
    task = make_task(sla_workflow, priority=priority)

    assert due_in(task) == sla


def test_an_unknown_priority_takes_the_workflows_default_priority(sla_workflow):
    sla_workflow.default_priority = "low"
    sla_workflow.save()

    assert due_in(make_task(sla_workflow, priority="P3")) == 24 * HOUR


def test_a_steps_own_sla_replaces_the_workflows(sla_workflow):
    Steps.objects.filter(workflow=sla_workflow, order=1).update(sla=timedelta(minutes=30))

    assert due_in(make_task(sla_workflow, priority="Low")) == timedelta(minutes=30)


def test_without_any_sla_a_task_has_no_deadline_and_is_never_overdue(two_step_workflow):
    task = make_task(two_step_workflow)

    assert (task.step_due_at, task.is_overdue) == (None, False)


def test_a_task_created_for_a_ticket_gets_its_first_steps_deadline(sla_workflow, tts):
    tts.role(ROLE, [3, 6, 7])
    ticket = WorkflowTicket.objects.create(
        ticket_number="TX-D1", department="IT Department", category="IT Support", priority="High"
    )

    task, _ = services.task_create_for_ticket(ticket_id=ticket.pk)

    task.refresh_from_db()
    assert due_in(task) == 4 * HOUR
    assert abs(task.step_entered_at - timezone.now()) < timedelta(minutes=1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL only")
def test_a_new_ticket_stored_with_its_task_in_one_statement_gets_its_deadline(role, manager, tts):
    make_workflow(name="With SLAs", steps=[role, manager], urgent_sla=HOUR, medium_sla=8 * HOUR)
    tts.role(ROLE, [3, 6, 7])

    ticket_tasks.receive_ticket.run(ticket_payload("TX-D2", priority="Critical"))

    task = Task.objects.get(ticket__ticket_number="TX-D2")
    assert due_in(task) == HOUR


def test_moving_on_gives_the_next_step_its_own_deadline_from_the_move(sla_workflow, tts):
    Steps.objects.filter(workflow=sla_workflow, order=2).update(sla=2 * HOUR)
    task = make_task(sla_workflow, users=[assignment(3)], priority="low")
    Task.objects.filter(pk=task.pk).update(escalated_at=timezone.now())
    tts.role("Manager", [11])

    moved = services.task_move_to_next_step(task_id=task.pk)

    moved.refresh_from_db()
    assert moved.current_step.order == 2
    assert due_in(moved) == 2 * HOUR
    assert moved.step_entered_at > task.step_entered_at
    assert moved.escalated_at is None


def test_time_on_hold_does_not_count_against_the_deadline(sla_workflow):
    task = make_task(sla_workflow, users=[assignment(3)])
    services.task_hold(task_id=task.pk, reason="vendor")
    Task.objects.filter(pk=task.pk).update(
        step_entered_at=timezone.now() - 4 * HOUR, held_at=timezone.now() - 3 * HOUR
    )

    resumed = services.task_resume(task_id=task.pk)

    resumed.refresh_from_db()
    assert abs(resumed.step_due_at - (task.step_due_at + 3 * HOUR)) < timedelta(seconds=5)
    assert resumed.held_at is None


def test_the_api_shows_the_deadline_and_whether_it_passed(api_client, sla_workflow):
    late = make_task(sla_workflow, number="TX-L", users=[assignment(3)])
    Task.objects.filter(pk=late.pk).update(step_due_at=timezone.now() - HOUR)
    on_time = make_task(sla_workflow, number="TX-O", users=[assignment(3)])

    rows = {row["task_id"]: row for row in api_client.get(TASKS).json()["results"]}

    assert rows[late.pk]["is_overdue"] is True
    assert rows[on_time.pk]["is_overdue"] is False
    assert rows[on_time.pk]["step_due_at"] is not None
    assert api_client.get(f"{TASKS}{late.pk}/").json()["is_overdue"] is True


def test_the_overdue_filter_lists_late_open_tasks_only(api_client, sla_workflow):
    late = make_task(sla_workflow, number="TX-L", users=[assignment(3)])
    held = make_task(sla_workflow, number="TX-H", users=[assignment(3)])
    on_time = make_task(sla_workflow, number="TX-O", users=[assignment(3)])
    no_deadline = make_task(
        make_workflow(name="No SLA", steps=[sla_workflow.steps.first().role]), number="TX-N"
    )
    services.task_hold(task_id=held.pk, reason="r")
    Task.objects.filter(pk__in=[late.pk, held.pk]).update(step_due_at=timezone.now() - HOUR)

    overdue = api_client.get(TASKS, {"overdue": "true"}).json()["results"]
    not_overdue = api_client.get(TASKS, {"overdue": "false"}).json()["results"]

    assert [row["task_id"] for row in overdue] == [late.pk]
    assert sorted(row["task_id"] for row in not_overdue) == sorted([held.pk, on_time.pk, no_deadline.pk])
    assert api_client.get(TASKS, {"overdue": "maybe"}).status_code == 400
