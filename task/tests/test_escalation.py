"""Overdue steps escalated by their policy: once per entry into the step, recorded, safe with two workers."""

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from task import services
from task import tasks as task_tasks
from task.models import Assignment, Task, TaskEvent, UserAvailability
from task.tests.conftest import assignment, make_task
from task.tests.test_lifecycle import recounted_loads, stored_loads
from workflow.models import Roles, Steps

pytestmark = pytest.mark.django_db

ROLE = "IT Support Technician"
HOUR = timedelta(hours=1)


def overdue_task(workflow, *, escalation: str, number: str = "TX-E1", users=None, **step_fields) -> Task:
    """A task on `workflow`'s first step, an hour past its deadline, the step escalating by `escalation`."""
    Steps.objects.filter(workflow=workflow, order=1).update(escalation=escalation, sla=HOUR, **step_fields)
    task = make_task(workflow, number=number, users=users if users is not None else [assignment(3)])
    past = timezone.now() - 2 * HOUR
    Task.objects.filter(pk=task.pk).update(step_entered_at=past, step_due_at=past + HOUR)
    return Task.objects.get(pk=task.pk)


def escalations(task: Task) -> list[dict]:
    return list(
        TaskEvent.objects.filter(task=task, kind="escalated").order_by("id").values_list("details", flat=True)
    )


@pytest.fixture
def send_task():
    with mock.patch("task.services.celery_app.send_task") as patched:
        yield patched


def test_notify_sends_one_step_overdue_message_with_who_and_how_late(
    two_step_workflow, send_task, django_capture_on_commit_callbacks
):
    task = overdue_task(two_step_workflow, escalation="notify", users=[assignment(3), assignment(6)])

    with django_capture_on_commit_callbacks(execute=True):
        assert services.task_escalate_overdue() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert services.task_escalate_overdue() == 0

    send_task.assert_called_once()
    assert send_task.call_args.args[0] == settings.NOTIFICATION_TASK_NAME
    assert send_task.call_args.kwargs["queue"] == settings.NOTIFICATION_TASKS_QUEUE
    (payload,) = send_task.call_args.kwargs["args"]
    assert payload["event"] == "step_overdue"
    assert (payload["task_id"], payload["ticket_number"], payload["step_id"]) == (
        task.pk,
        "TX-E1",
        task.current_step_id,
    )
    assert [user["userID"] for user in payload["users"]] == [3, 6]
    assert 3600 <= payload["overdue_seconds"] < 3700
    (event,) = escalations(task)
    assert (event["policy"], event["outcome"]) == ("notify", "notified")


def test_reassign_moves_the_assignees_who_have_not_started(two_step_workflow, tts, send_task):
    task = overdue_task(
        two_step_workflow, escalation="reassign", users=[assignment(3), assignment(6, status="in_progress")]
    )
    tts.role(ROLE, [3, 6, 7, 8])

    assert services.task_escalate(task_id=task.pk) is True

    task.refresh_from_db()
    users = {entry["userID"]: entry["status"] for entry in task.users}
    assert 3 not in users and users[6] == "in_progress" and len(users) == 2
    moved = Assignment.objects.get(task=task, is_current=True, origin="reassigned")
    assert moved.user_id in (7, 8)
    (event,) = escalations(task)
    assert (event["outcome"], event["moved_user_ids"]) == ("reassigned", [3])
    assert stored_loads() == recounted_loads()
    send_task.assert_not_called()


def test_escalate_to_role_adds_up_to_the_steps_count_of_the_roles_users_through_the_engine(
    two_step_workflow, tts, send_task
):
    leads = Roles.objects.create(name="Leads")
    task = overdue_task(
        two_step_workflow, escalation="escalate_to_role", escalation_role=leads, max_assignees=2
    )
    tts.role("Leads", [21, 22, 23])

    assert services.task_escalate(task_id=task.pk) is True

    added = Assignment.objects.filter(task=task, is_current=True, origin="escalated")
    assert sorted(added.values_list("user_id", "role")) == [(21, "Leads"), (22, "Leads")]
    task.refresh_from_db()
    assert [entry["userID"] for entry in task.users] == [3, 21, 22]
    (event,) = escalations(task)
    assert (event["outcome"], event["added_user_ids"]) == ("escalated_to_role", [21, 22])
    decision = TaskEvent.objects.filter(task=task, kind="assigned").last().details["decision"]
    assert (decision["trigger"], decision["role"]) == ("escalation", "Leads")
    assert stored_loads() == recounted_loads()
    send_task.assert_not_called()


def test_an_escalation_that_finds_nobody_records_why(two_step_workflow, tts):
    leads = Roles.objects.create(name="Leads")
    task = overdue_task(two_step_workflow, escalation="escalate_to_role", escalation_role=leads)
    tts.role("Leads", [21])
    UserAvailability.objects.create(user_id=21, status=UserAvailability.Status.UNAVAILABLE)

    assert services.task_escalate(task_id=task.pk) is True

    (event,) = escalations(task)
    assert event["outcome"] == "nobody"
    assert "unavailable" in event["reason"]
    assert not Assignment.objects.filter(task=task, origin="escalated").exists()
    assert services.task_escalate(task_id=task.pk) is False  # once per entry into the step, even so


def test_a_reassignment_with_everyone_started_records_why(two_step_workflow, tts):
    task = overdue_task(two_step_workflow, escalation="reassign", users=[assignment(3, status="in_progress")])

    services.task_escalate(task_id=task.pk)

    (event,) = escalations(task)
    assert event["outcome"] == "nobody"
    assert "started" in event["reason"]


def test_held_not_yet_due_and_policy_free_tasks_are_not_escalated(two_step_workflow, send_task, role):
    held = overdue_task(two_step_workflow, escalation="notify", number="TX-H")
    services.task_hold(task_id=held.pk, reason="vendor")
    on_time = make_task(two_step_workflow, number="TX-O", users=[assignment(3)])
    Task.objects.filter(pk=on_time.pk).update(step_due_at=timezone.now() + HOUR)
    cancelled = overdue_task(two_step_workflow, escalation="notify", number="TX-C")
    services.task_cancel(task_id=cancelled.pk, reason="dup")
    plain = overdue_task(two_step_workflow, escalation="", number="TX-P")

    assert services.task_escalate_overdue() == 0

    assert not TaskEvent.objects.filter(kind="escalated").exists()
    assert all(not escalations(task) for task in (held, on_time, cancelled, plain))
    send_task.assert_not_called()


def test_a_task_entering_another_step_may_be_escalated_again_there(two_step_workflow, tts, send_task):
    task = overdue_task(two_step_workflow, escalation="notify")
    services.task_escalate(task_id=task.pk)
    Steps.objects.filter(workflow=two_step_workflow, order=2).update(escalation="notify", sla=HOUR)
    tts.role("Manager", [11])
    services.task_move_to_next_step(task_id=task.pk)
    Task.objects.filter(pk=task.pk).update(step_due_at=timezone.now() - timedelta(minutes=5))

    assert services.task_escalate(task_id=task.pk) is True

    assert [event["policy"] for event in escalations(task)] == ["notify", "notify"]
    assert (
        TaskEvent.objects.filter(task=task, kind="escalated").last().step_id
        == task.workflow.steps.get(order=2).pk
    )


def test_an_escalation_does_not_move_the_deadline(two_step_workflow, send_task):
    task = overdue_task(two_step_workflow, escalation="notify")

    services.task_escalate(task_id=task.pk)

    assert Task.objects.get(pk=task.pk).step_due_at == task.step_due_at


def test_the_periodic_task_escalates_and_is_scheduled_on_the_default_queue(two_step_workflow, send_task):
    overdue_task(two_step_workflow, escalation="notify")

    assert task_tasks.escalate_overdue_tasks.delay().get() == 1

    entry = settings.CELERY_BEAT_SCHEDULE["escalate-overdue-tasks"]
    assert entry["task"] == task_tasks.escalate_overdue_tasks.name
    assert entry["schedule"] == settings.SLA_CHECK_INTERVAL
    assert "queue" not in entry.get("options", {})  # the default queue, which a plain worker consumes


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two database sessions at once need PostgreSQL")
def test_two_workers_checking_at_once_escalate_each_step_once(two_step_workflow, send_task):
    tasks = [overdue_task(two_step_workflow, escalation="notify", number=f"TX-R{n}") for n in range(20)]
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def worker() -> None:
        try:
            barrier.wait()
            counts.append(services.task_escalate_overdue())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(counts) == 20
    assert all(len(escalations(task)) == 1 for task in tasks)
    assert send_task.call_count == 20


def test_an_sla_check_interval_below_one_second_is_refused_at_startup():
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SLA_CHECK_INTERVAL": "0", "DJANGO_SETTINGS_MODULE": "workflow_api.settings"}

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert "SLA_CHECK_INTERVAL must be at least 1" in result.stderr


def test_admin_shows_an_escalation_in_the_tasks_history_and_keeps_its_deadline_read_only(
    client, two_step_workflow, send_task
):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123"))
    task = overdue_task(two_step_workflow, escalation="notify")
    services.task_escalate(task_id=task.pk)

    page = client.get(f"/admin/task/task/{task.pk}/change/").content.decode()

    assert "Escalated" in page
    assert "step_overdue" not in page  # the message went out; the history keeps what was done
    assert "late_seconds" in page
    for field in ("step_due_at", "escalated_at", "held_at", "step_entered_at"):
        assert f'name="{field}' not in page  # nor its date and time inputs


def test_escalations_are_counted_in_the_metrics_by_policy_and_outcome(
    two_step_workflow, tts, send_task, client, django_capture_on_commit_callbacks
):
    from tests.api.test_metric_counters import _samples

    overdue_task(two_step_workflow, escalation="notify", number="TX-M1")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.task_escalate_overdue() == 1
    tts.role(ROLE, [])
    overdue_task(two_step_workflow, escalation="reassign", number="TX-M2")
    assert services.task_escalate_overdue() == 1

    samples = _samples(client)

    assert samples['workflow_api_escalations_total{outcome="notified",policy="notify"}'] == 1
    assert sum(value for name, value in samples.items() if 'policy="reassign"' in name) == 1
