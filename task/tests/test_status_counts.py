"""workflow_statistics read from counts kept in each change's transaction: equal to a full count, always."""

import threading

import pytest
from django.db import connection
from django.db.models import Count

from conftest import make_task, make_workflow, ticket_payload
from task import selectors, services
from task.models import Task
from tickets import tasks as ticket_tasks

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the counts are kept by PostgreSQL triggers (elsewhere statistics count every task); "
    "CI runs these on PostgreSQL",
)


def _full_count() -> dict:
    by_status = dict.fromkeys(Task.Status.values, 0)
    by_workflow: dict[int, dict[str, int]] = {}
    for row in Task.objects.order_by().values("workflow_id", "status").annotate(n=Count("task_id")):
        by_status[row["status"]] += row["n"]
        by_workflow.setdefault(row["workflow_id"], dict.fromkeys(Task.Status.values, 0))[row["status"]] = row[
            "n"
        ]
    return {"total": sum(by_status.values()), "by_status": by_status, "by_workflow": by_workflow}


def _statistics() -> dict:
    stats = selectors.task_statistics()
    return {
        "total": stats["total_tasks"],
        "by_status": stats["by_status"],
        "by_workflow": {entry["workflow_id"]: entry["by_status"] for entry in stats["by_workflow"]},
    }


def _deliver(number: str, sub_category: str) -> None:
    ticket_tasks.receive_ticket.push_request(id=f"m-{number}", delivery_info={"redelivered": False})
    try:
        ticket_tasks.receive_ticket.run(ticket_payload(number, sub_category=sub_category))
    finally:
        ticket_tasks.receive_ticket.pop_request()


def _run_at_once(jobs: list) -> list[BaseException]:
    """Each job in its own thread (own PostgreSQL connection), released together."""
    start = threading.Barrier(len(jobs))
    failures: list[BaseException] = []

    def client(job) -> None:
        try:
            start.wait(timeout=10)
            job()
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return failures


def test_statistics_equal_a_full_count_after_a_mixed_concurrent_workload(transactional_db, tts, role):
    first = make_workflow(name="First", sub_category="Printers", steps=[role])
    second = make_workflow(name="Second", sub_category="VPN", steps=[role])
    tts.role(role.name, [3, 6, 7])
    tasks = [
        make_task(workflow, number=f"T{n}", users=[{"userID": 3}, {"userID": 6}])
        for n, workflow in enumerate([first, second] * 8)
    ]

    def work(share: list[Task], offset: int):
        def run() -> None:
            for n, task in enumerate(share):
                services.task_update_user_status(task_id=task.pk, user_id=3, new_status="in_progress")
                if n % 2 == 0:
                    services.task_complete(task_id=task.pk)
                elif n % 3 == 0:
                    services.task_move_to_next_step(task_id=task.pk)  # the last step: completes
                _deliver(f"NEW{offset}-{n}", "Printers" if n % 2 else "VPN")

        return run

    shares = [tasks[i::4] for i in range(4)]
    failures = _run_at_once([work(share, i) for i, share in enumerate(shares)])

    assert failures == []
    counted = _full_count()
    assert counted["total"] == 32
    assert counted["by_status"]["completed"] > 0 and counted["by_status"]["in_progress"] > 0
    assert _statistics() == counted


def test_statistics_follow_writes_that_bypass_the_services(db, workflow, role):
    other = make_workflow(name="Other", sub_category="VPN", steps=[role])
    tasks = [make_task(workflow, number=f"T{n}") for n in range(5)]

    Task.objects.filter(pk__in=[t.pk for t in tasks[:3]]).update(status=Task.Status.ON_HOLD)
    Task.objects.filter(pk=tasks[3].pk).update(workflow=other, status=Task.Status.IN_PROGRESS)
    Task.objects.filter(pk=tasks[0].pk).update(updated_at=tasks[0].updated_at)
    tasks[4].assignments.all().delete()
    tasks[4].delete()

    assert _statistics() == _full_count()
    assert _statistics()["by_status"]["on_hold"] == 3
    assert _statistics()["by_workflow"][other.pk]["in_progress"] == 1
    assert _statistics()["total"] == 4


def test_a_statement_rolled_back_leaves_the_counts_as_they_were(db, workflow):
    from django.db import transaction

    make_task(workflow, number="T1")
    before = _statistics()

    with pytest.raises(RuntimeError), transaction.atomic():
        Task.objects.update(status=Task.Status.CANCELLED)
        raise RuntimeError

    assert _statistics() == before == _full_count()
