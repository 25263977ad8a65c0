"""The task list's direct representation is exactly what DRF's generic serializer path returns."""

import json
from datetime import UTC, datetime

from rest_framework import serializers

from conftest import make_task
from task.models import Task
from task.serializers import TaskSerializer

TASKS = "/tasks/api/tasks/"


def _generic(task_id: int) -> dict:
    """DRF's field-by-field representation of the task as the ORM loads it, relations followed."""
    task = Task.objects.get(pk=task_id)
    data = serializers.ModelSerializer.to_representation(TaskSerializer(), task)
    return json.loads(json.dumps(data))


def test_every_listed_task_is_what_the_generic_serializer_returns(api_client, two_step_workflow):
    plain = make_task(two_step_workflow, number="TX-1")
    staffed = make_task(
        two_step_workflow,
        number="TX-2",
        users=[
            {"userID": 3, "role": "IT Support Technician", "username": "ana", "email": "ana@example.com"},
            {"userID": 6, "role": "IT Support Technician", "status": "in_progress"},
        ],
    )
    done = make_task(two_step_workflow, number="TX-3", users=[{"userID": 7}], status="completed")
    held = make_task(two_step_workflow, number="TX-4", users=[{"userID": 7}], status="on_hold", step_order=2)
    Task.objects.filter(pk=held.pk).update(fetched_at=datetime(2025, 11, 10, 8, 15, 30, 123456, tzinfo=UTC))
    Task.objects.filter(pk=plain.pk).update(current_step=None)

    listed = api_client.get(TASKS).json()["results"]
    detail = api_client.get(f"{TASKS}{staffed.pk}/").json()

    assert [entry["task_id"] for entry in listed] == [held.pk, done.pk, staffed.pk, plain.pk]
    assert listed == [_generic(task_id) for task_id in (held.pk, done.pk, staffed.pk, plain.pk)]
    assert detail == _generic(staffed.pk)
    assert listed[2]["users"][0]["username"] == "ana" and listed[2]["assigned_users_count"] == 2
    assert listed[3]["current_step_name"] is None and listed[0]["fetched_at"].endswith("Z")
