"""Overdue steps escalated by real beat and worker processes: each once, with two beats running."""

import time
import uuid
from datetime import timedelta

import pytest

from conftest import make_workflow
from task import services
from task.models import Assignment, Task, TaskEvent
from tests.integration.conftest import ROLE, SEVEN_USERS, wait_until
from workflow.models import Roles, Steps

pytestmark = pytest.mark.integration

SLA = timedelta(seconds=3)


def _task_on_step(role: Roles, *, name: str, number: str, **step_fields) -> Task:
    from conftest import make_task

    workflow = make_workflow(name=name, category=name, steps=[role])
    Steps.objects.filter(workflow=workflow).update(sla=SLA, **step_fields)
    return make_task(workflow, number=number, users=[{"userID": 3, "role": ROLE}])


def _escalations(task: Task) -> list[dict]:
    return list(TaskEvent.objects.filter(task=task, kind="escalated").values_list("details", flat=True))


def test_two_beats_and_two_workers_escalate_each_overdue_step_exactly_once_and_skip_held_tasks(
    cluster, broker, fake_tts
):
    role = Roles.objects.create(name=ROLE)
    leads = Roles.objects.create(name="Leads")
    fake_tts.state.configure({"roles": {ROLE: SEVEN_USERS, "Leads": [41, 42, 43]}})
    notifications = f"notifications.{uuid.uuid4().hex[:8]}"
    notify = _task_on_step(role, name="Notify", number="TX-N", escalation="notify")
    held = _task_on_step(role, name="Held", number="TX-H", escalation="notify")
    reassign = _task_on_step(role, name="Reassign", number="TX-R", escalation="reassign")
    to_role = _task_on_step(
        role,
        name="To role",
        number="TX-E",
        escalation="escalate_to_role",
        escalation_role=leads,
        max_assignees=2,
    )
    services.task_hold(task_id=held.pk, reason="waiting for the vendor")
    try:
        for name in ("alpha", "beta"):
            cluster.start(
                name, beat=True, wait=False, SLA_CHECK_INTERVAL=1, NOTIFICATION_TASKS_QUEUE=notifications
            )
        for worker in cluster.workers:
            worker.wait_ready()

        wait_until(
            lambda: all(_escalations(task) for task in (notify, reassign, to_role)),
            timeout=60,
            what="the three overdue steps escalated",
        )
        time.sleep(4)  # several more checks by both beats

        assert [len(_escalations(task)) for task in (notify, reassign, to_role)] == [1, 1, 1]
        assert _escalations(held) == []
        assert broker.redis.llen(notifications) == 1
        (moved,) = _escalations(reassign)
        assert moved["moved_user_ids"] == [3]
        assert 3 not in Task.objects.get(pk=reassign.pk).get_assigned_user_ids()
        added = Assignment.objects.filter(task=to_role, origin="escalated").values_list("user_id", flat=True)
        assert sorted(added) == [41, 42]
        assert (
            Task.objects.get(pk=notify.pk).step_due_at == notify.step_due_at
        )  # escalation keeps the deadline
    finally:
        broker.redis.delete(notifications)
