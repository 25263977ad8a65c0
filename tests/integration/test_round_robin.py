"""Round-robin across worker processes: the cursor lives in PostgreSQL, not in a worker."""

from collections import Counter

import pytest

from conftest import ticket_payload
from task.models import Task
from tests.integration.conftest import SEVEN_USERS, wait_until
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.integration


def _send_and_wait(cluster, numbers: list[str], total_expected: int, timeout: float) -> None:
    for number in numbers:
        cluster.broker.send_ticket(ticket_payload(number))
    wait_until(
        lambda: (
            WorkflowTicket.objects.filter(is_task_allocated=True).count() >= total_expected
            and cluster.broker.idle()
        ),
        timeout=timeout,
        what=f"{total_expected} allocated tickets",
    )


def _assignments_in_creation_order() -> list[list[int]]:
    return [task.get_assigned_user_ids() for task in Task.objects.order_by("task_id")]


def test_seventy_tasks_over_two_workers_and_a_restart_give_each_of_seven_users_thirty(cluster, it_workflow):
    before = [
        cluster.start("alpha", concurrency=2, wait=False),
        cluster.start("beta", concurrency=2, wait=False),
    ]
    for worker in before:
        worker.wait_ready()
    # 12 tasks x 3 users leave the cursor at 36 % 7 = 1: a restart that
    # started the rotation over would visibly skew the counts.
    _send_and_wait(cluster, [f"TX-RR-{n}" for n in range(12)], 12, timeout=60)
    for worker in before:
        worker.stop()
    after = [
        cluster.start("gamma", concurrency=2, wait=False),
        cluster.start("delta", concurrency=2, wait=False),
    ]
    for worker in after:
        worker.wait_ready()
    _send_and_wait(cluster, [f"TX-RR-{n}" for n in range(12, 70)], 70, timeout=120)

    assignments = _assignments_in_creation_order()
    counts = Counter(user for users in assignments for user in users)
    assert Task.objects.count() == 70
    assert counts == {user: 30 for user in SEVEN_USERS}
    # The rotation is one unbroken sequence, across processes and the restart.
    assert assignments == [[SEVEN_USERS[(3 * k + j) % 7] for j in range(3)] for k in range(70)]
    # Both generations of workers created tasks.
    assert all("Task " in worker.log() for worker in before + after)


def test_three_hundred_tickets_with_one_assignee_each_give_every_user_42_or_43(cluster, it_workflow):
    workers = [
        cluster.start(name, concurrency=2, wait=False, ROUND_ROBIN_MAX_ASSIGNMENTS=1)
        for name in ("alpha", "beta")
    ]
    for worker in workers:
        worker.wait_ready()

    _send_and_wait(cluster, [f"TX-ONE-{n}" for n in range(300)], 300, timeout=240)

    assignments = _assignments_in_creation_order()
    counts = Counter(user for users in assignments for user in users)
    assert Task.objects.count() == 300
    assert sorted(counts) == sorted(SEVEN_USERS)
    assert set(counts.values()) <= {42, 43}
    assert sum(counts.values()) == 300
    assert assignments == [[SEVEN_USERS[k % 7]] for k in range(300)]
