import pytest

import conftest
from conftest import make_workflow
from task.models import Task
from workflow.models import Roles

ASSIGNED_ON = "2025-11-10T14:30:00Z"


def assignment(user_id: int, status: str = "assigned", role: str = "IT Support Technician") -> dict:
    return {"userID": user_id, "status": status, "assigned_on": ASSIGNED_ON, "role": role}


@pytest.fixture
def manager(db) -> Roles:
    return Roles.objects.create(name="Manager")


@pytest.fixture
def two_step_workflow(role, manager):
    return make_workflow(name="Two steps", steps=[role, manager])


def make_task(workflow, **fields) -> Task:
    """A task assigned to users 3 and 6 unless `users` says otherwise."""
    fields.setdefault("users", [assignment(3), assignment(6)])
    return conftest.make_task(workflow, **fields)


@pytest.fixture
def task(two_step_workflow) -> Task:
    return make_task(two_step_workflow)
