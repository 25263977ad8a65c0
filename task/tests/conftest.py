import pytest

from conftest import make_workflow
from task.models import Task
from tickets.models import WorkflowTicket
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


def make_task(workflow, *, number: str = "TX1", users=None, status=Task.Status.PENDING, step_order=1) -> Task:
    ticket = WorkflowTicket.objects.create(
        ticket_number=number, subject=f"Subject {number}", is_task_allocated=True
    )
    return Task.objects.create(
        ticket=ticket,
        workflow=workflow,
        current_step=workflow.steps.get(order=step_order),
        users=[assignment(3), assignment(6)] if users is None else users,
        status=status,
    )


@pytest.fixture
def task(two_step_workflow) -> Task:
    return make_task(two_step_workflow)
