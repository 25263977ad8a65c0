"""The assignment engine under real workers: capacity, waiting tickets, load balancing, availability."""

from collections import Counter

import pytest
from django.db.models import Sum

from conftest import ticket_payload
from task import services
from task.models import AssigneeLoad, Assignment, Task
from tests.integration.conftest import ROLE, SEVEN_USERS, wait_until
from tickets.models import WorkflowTicket
from workflow.models import Steps

pytestmark = pytest.mark.integration


def _send(cluster, numbers: list[str]) -> None:
    for number in numbers:
        cluster.broker.send_ticket(ticket_payload(number))


def _open_per_user() -> Counter:
    return Counter(Assignment.objects.filter(is_open=True).values_list("user_id", flat=True))


def _settled(cluster, *, allocated: int, waiting: int = 0):
    return (
        WorkflowTicket.objects.filter(is_task_allocated=True).count() == allocated
        and WorkflowTicket.objects.filter(allocation_error=WorkflowTicket.WAITING).count() == waiting
        and cluster.broker.idle()
    )


def test_two_workers_never_put_a_user_over_capacity_and_a_waiting_ticket_is_allocated_when_work_completes(
    cluster, it_workflow, settings
):
    # Wake-ups are enqueued by this process too (after the completion below): on this test's queue.
    settings.WORKFLOW_TASKS_QUEUE = cluster.broker.workflow_queue
    for user_id in SEVEN_USERS:
        services.availability_set(user_id=user_id, actor="1", max_open_assignments=2)
    for name in ("alpha", "beta"):
        cluster.start(name, concurrency=2, wait=False)
    for worker in cluster.workers:
        worker.wait_ready()

    # 7 users x 2 open assignments = 14 places; 3 per ticket: 4 full tickets, one with 2, one waiting.
    _send(cluster, [f"TX-CAP-{n}" for n in range(6)])
    wait_until(
        lambda: _settled(cluster, allocated=5, waiting=1), timeout=60, what="5 tickets allocated, 1 waiting"
    )

    assert _open_per_user() == {user_id: 2 for user_id in SEVEN_USERS}
    assert sorted(len(task.get_assigned_user_ids()) for task in Task.objects.all()) == [2, 3, 3, 3, 3]
    waiting = WorkflowTicket.objects.get(allocation_error=WorkflowTicket.WAITING)
    assert "7 at_capacity" in waiting.allocation_error_detail
    assert waiting.allocation_attempts == 1
    # The counters the engine reads agree with the rows.
    assert AssigneeLoad.objects.aggregate(total=Sum("open_assignments"))["total"] == 14

    # Completing a task frees its assignees: the waiting ticket is allocated, no beat running.
    finished = Task.objects.filter(assignments__isnull=False).order_by("task_id").first()
    freed = set(finished.get_assigned_user_ids())
    services.task_complete(task_id=finished.pk)
    wait_until(lambda: _settled(cluster, allocated=6), timeout=15, what="the waiting ticket to be allocated")

    task = Task.objects.get(ticket=waiting)
    assert set(task.get_assigned_user_ids()) <= freed
    assert max(_open_per_user().values()) == 2
    assert WorkflowTicket.objects.get(pk=waiting.pk).allocation_attempts == 1


def test_load_balanced_gives_six_available_users_two_tickets_each_across_two_workers(cluster, it_workflow):
    Steps.objects.filter(workflow=it_workflow).update(assignment_strategy="load_balanced", max_assignees=1)
    away = SEVEN_USERS[-1]
    services.availability_set(user_id=away, actor="1", status="unavailable")
    for name in ("alpha", "beta"):
        cluster.start(name, concurrency=2, wait=False)
    for worker in cluster.workers:
        worker.wait_ready()

    _send(cluster, [f"TX-LB-{n}" for n in range(12)])
    wait_until(lambda: _settled(cluster, allocated=12), timeout=60, what="12 allocated tickets")

    counts = Counter(user for task in Task.objects.all() for user in task.get_assigned_user_ids())
    assert counts == {user_id: 2 for user_id in SEVEN_USERS[:-1]}
    records = [event.details["decision"] for event in Task.objects.first().events.filter(kind="assigned")]
    assert records[0]["strategy"] == "load_balanced"
    assert records[0]["role"] == ROLE
