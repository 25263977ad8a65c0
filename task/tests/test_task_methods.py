from unittest import mock

import pytest

from task.models import Task
from task.tests.conftest import assignment, make_task
from workflow.models import Workflows
from workflow_api import errors

pytestmark = pytest.mark.django_db


def test_get_assigned_user_ids_lists_user_ids_in_order(task):
    assert task.get_assigned_user_ids() == [3, 6]


def test_get_assigned_users_by_status_filters_entries(two_step_workflow):
    task = make_task(two_step_workflow, users=[assignment(3), assignment(6, "in_progress")])

    (entry,) = task.get_assigned_users_by_status("in_progress")
    assert {key: entry[key] for key in ("userID", "status", "role")} == {
        "userID": 6,
        "status": "in_progress",
        "role": "IT Support Technician",
    }
    assert task.get_assigned_users_by_status("completed") == []


def test_update_user_status_changes_only_that_user_and_starts_the_task(task):
    task.update_user_status(6, "in_progress")

    stored = Task.objects.get(pk=task.pk)
    assert [(u["userID"], u["status"]) for u in stored.users] == [(3, "assigned"), (6, "in_progress")]
    assert stored.status == Task.Status.IN_PROGRESS
    assert task.status == Task.Status.IN_PROGRESS  # the instance is refreshed too


def test_update_user_status_of_an_unassigned_user_is_refused(task):
    with pytest.raises(errors.InvalidInput):
        task.update_user_status(99, "completed")


def test_add_user_assignment_appends_a_spec_shaped_entry(task):
    task.add_user_assignment({"userID": 9, "role": "Manager", "username": "jdoe"})

    entry = Task.objects.get(pk=task.pk).users[-1]
    assert entry["userID"] == 9
    assert entry["status"] == "assigned"
    assert entry["role"] == "Manager"
    assert entry["username"] == "jdoe"
    assert entry["assigned_on"].endswith("Z")


def test_add_user_assignment_refuses_a_user_already_assigned(task):
    with pytest.raises(errors.Conflict):
        task.add_user_assignment({"userID": 3})


def test_mark_as_completed_completes_the_task(task):
    task.mark_as_completed()

    assert Task.objects.get(pk=task.pk).status == Task.Status.COMPLETED


def test_completing_a_cancelled_task_is_an_invalid_transition(two_step_workflow):
    task = make_task(two_step_workflow, status=Task.Status.CANCELLED)

    with pytest.raises(errors.InvalidTransition):
        task.mark_as_completed()


def test_completion_with_notification_end_logic_enqueues_the_notification_after_commit(
    task, settings, django_capture_on_commit_callbacks
):
    Workflows.objects.filter(pk=task.workflow_id).update(end_logic=Workflows.EndLogic.NOTIFICATION)

    with (
        mock.patch("task.services.celery_app.send_task") as send_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        Task.objects.get(pk=task.pk).mark_as_completed()

    send_task.assert_called_once()
    name = send_task.call_args.args[0]
    (payload,) = send_task.call_args.kwargs["args"]
    assert name == settings.NOTIFICATION_TASK_NAME
    assert send_task.call_args.kwargs["queue"] == settings.NOTIFICATION_TASKS_QUEUE
    assert payload["task_id"] == task.task_id
    assert payload["ticket_number"] == "TX1"
    assert [u["userID"] for u in payload["users"]] == [3, 6]


def test_completion_without_end_logic_sends_nothing(task, django_capture_on_commit_callbacks):
    with (
        mock.patch("task.services.celery_app.send_task") as send_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        task.mark_as_completed()

    send_task.assert_not_called()


def test_move_to_next_step_assigns_the_next_roles_users_by_round_robin(task, tts):
    tts.role("Manager", [11, 12])

    task.move_to_next_step()

    stored = Task.objects.get(pk=task.pk)
    assert stored.current_step.order == 2
    assert [(u["userID"], u["role"]) for u in stored.users] == [(11, "Manager"), (12, "Manager")]
    assert task.current_step.order == 2


def test_move_from_the_last_step_completes_the_task(two_step_workflow, tts):
    task = make_task(two_step_workflow, step_order=2)

    task.move_to_next_step()

    stored = Task.objects.get(pk=task.pk)
    assert stored.status == Task.Status.COMPLETED
    assert stored.current_step.order == 2
    assert tts.calls == 0


def test_moving_a_completed_task_is_an_invalid_transition(two_step_workflow):
    task = make_task(two_step_workflow, status=Task.Status.COMPLETED)

    with pytest.raises(errors.InvalidTransition):
        task.move_to_next_step()


def test_one_task_per_ticket_is_enforced_by_the_database(task):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        Task.objects.create(ticket=task.ticket, workflow=task.workflow)
