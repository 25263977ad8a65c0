"""Two clients changing different users of one task at the same moment: neither change is lost."""

import threading

import pytest
from django.db import connection

from conftest import make_task
from task import services
from task.models import Task
from tests.integration.conftest import ROLE

pytestmark = pytest.mark.integration


def _task_with_users(workflow, user_ids: list[int]) -> Task:
    return make_task(workflow, number="TX-TWO", users=[{"userID": user, "role": ROLE} for user in user_ids])


def _update_all_at_once(task_id: int, changes: dict[int, str]) -> list[BaseException]:
    """One thread (own PostgreSQL connection) per change, released together."""
    start = threading.Barrier(len(changes))
    failures: list[BaseException] = []

    def client(user_id: int, new_status: str) -> None:
        try:
            start.wait(timeout=10)
            services.task_update_user_status(task_id=task_id, user_id=user_id, new_status=new_status)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=item) for item in changes.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return failures


def _statuses(task: Task) -> dict[int, str]:
    task.refresh_from_db()
    return {entry["userID"]: entry["status"] for entry in task.users}


def test_two_clients_updating_two_users_of_one_task_at_once_both_changes_are_kept(
    transactional_db, it_workflow
):
    task = _task_with_users(it_workflow, [3, 6])

    for round_number in range(30):
        status = "in_progress" if round_number % 2 == 0 else "on_hold"
        failures = _update_all_at_once(task.task_id, {3: status, 6: status})

        assert failures == []
        assert _statuses(task) == {3: status, 6: status}, f"a change was lost in round {round_number}"


def test_eight_clients_updating_eight_users_of_one_task_at_once_all_changes_are_kept(
    transactional_db, it_workflow
):
    users = [3, 6, 7, 11, 12, 21, 31, 32]
    task = _task_with_users(it_workflow, users)

    for status in ("in_progress", "on_hold", "completed"):
        failures = _update_all_at_once(task.task_id, dict.fromkeys(users, status))

        assert failures == []
        assert _statuses(task) == dict.fromkeys(users, status)


def test_two_roles_deciding_at_once_never_take_a_users_last_place_twice(transactional_db, tts):
    """User 5 is in two roles and has room for one more assignment; a ticket for each role arrives at once."""
    from conftest import make_workflow, ticket_payload
    from task.models import Assignment
    from tickets import services as ticket_services
    from tickets.models import WorkflowTicket
    from workflow.models import Roles

    for name, department in (("Desk", "D1"), ("Field", "D2")):
        make_workflow(name=name, department=department, category="C", steps=[Roles.objects.create(name=name)])
        tts.role(name, [5])
    services.availability_set(user_id=5, actor="1", max_open_assignments=1)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def deliver(number: str, department: str) -> None:
        try:
            start.wait(timeout=10)
            ticket_services.ticket_intake(
                payload=ticket_payload(number, department=department, category="C"),
                message_id=number,
                redelivered=False,
                retried=False,
            )
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    for _ in range(5):
        threads = [
            threading.Thread(target=deliver, args=(f"TX-{n}-{d}", d)) for n, d in ((_, "D1"), (_, "D2"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not failures
        assert Assignment.objects.filter(user_id=5, is_open=True).count() == 1
        assert WorkflowTicket.objects.filter(allocation_error="no_available_users").count() == 1
        # Free the place again for the next round (no ticket left waiting to wake).
        WorkflowTicket.objects.filter(allocation_error="no_available_users").delete()
        services.task_complete(task_id=Assignment.objects.get(user_id=5, is_open=True).task_id)
