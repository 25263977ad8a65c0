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
