"""Callers of the API as the permission rules see them: nobody, an assignee, another user, staff."""

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

import conftest
from conftest import make_workflow
from task.models import Task
from workflow.models import Roles
from workflow_api.authentication import mint_token

ASSIGNEE_ID = 3
OTHER_USER_ID = 42


@pytest.fixture
def anonymous(db) -> APIClient:
    return APIClient()


@pytest.fixture
def client_for(db) -> Callable[..., APIClient]:
    """A client sending a bearer token for `user_id`, staff or not."""

    def make(user_id: int, *, staff: bool = False) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {mint_token(user_id=user_id, is_staff=staff)}")
        return client

    return make


@pytest.fixture
def assignee(client_for) -> APIClient:
    return client_for(ASSIGNEE_ID)


@pytest.fixture
def other_user(client_for) -> APIClient:
    return client_for(OTHER_USER_ID)


@pytest.fixture
def staff(client_for) -> APIClient:
    return client_for(1, staff=True)


def assignment(user_id: int, status: str = "assigned") -> dict:
    return {"userID": user_id, "status": status, "assigned_on": "2025-11-10T14:30:00Z", "role": "Agent"}


def make_task(workflow, number: str, users: list[dict]) -> Task:
    return conftest.make_task(workflow, number=number, users=users)


@pytest.fixture
def agent_workflow(db):
    return make_workflow(name="Agents", steps=[Roles.objects.create(name="Agent")])


@pytest.fixture
def assigned_task(agent_workflow) -> Task:
    """A task assigned to ASSIGNEE_ID (and user 6), not to OTHER_USER_ID."""
    return make_task(agent_workflow, "TX-ASSIGNED", [assignment(ASSIGNEE_ID), assignment(6)])


@pytest.fixture
def unassigned_task(agent_workflow) -> Task:
    """A task assigned to someone else entirely."""
    return make_task(agent_workflow, "TX-OTHER", [assignment(7)])
