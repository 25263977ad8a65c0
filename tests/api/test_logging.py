"""Logs carry ids and outcomes, never credentials or the requester's personal data."""

import logging
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from conftest import make_workflow
from tickets import tasks
from workflow.models import Roles
from workflow_api.authentication import mint_token

MARKER = "PERSONAL-DATA-MARKER"


def _personal_values(payload: dict) -> list[str]:
    employee = payload["employee"]
    return [employee["email"], employee["first_name"], employee["last_name"], employee["company_id"]]


@pytest.fixture
def capture_everything(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_receiving_and_serving_a_ticket_logs_no_personal_data_and_no_token(
    db, capture_everything, upstream_payload, tts, django_capture_on_commit_callbacks
):
    role = Roles.objects.create(name="IT Support Technician")
    make_workflow(sub_category="Technical Assistance", steps=[role])
    tts.role(role.name, [3, 6, 7])
    staff_token = mint_token(user_id=1, is_staff=True)
    assignee_token = mint_token(user_id=3)
    expired_token = mint_token(user_id=3, lifetime=timedelta(minutes=-1))
    forged_token = staff_token[:-4] + "AAAA"

    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.receive_ticket.delay(upstream_payload).get()
    invalid = {**upstream_payload, "ticket_id": "TX-INVALID", "subject": "x" * 300}
    tasks.receive_ticket.delay(invalid).get()
    tasks.receive_ticket.delay({**upstream_payload, "ticket_id": dict(upstream_payload["employee"])}).get()

    staff, assignee, anonymous = APIClient(), APIClient(), APIClient()
    staff.credentials(HTTP_AUTHORIZATION=f"Bearer {staff_token}")
    assignee.cookies["access_token"] = assignee_token
    task_id = staff.get("/tasks/api/tasks/").json()["results"][0]["task_id"]
    staff.get(f"/tickets/api/tickets/{result['ticket_id']}/")
    staff.get("/tickets/api/tickets/", {"ticket_number": upstream_payload["employee"]["email"]})
    staff.post(f"/tasks/api/tasks/{task_id}/assign_user/", {"userID": 3}, format="json")
    assignee.post(f"/tasks/api/tasks/{task_id}/update_user_status/", {"user_id": 6, "status": "completed"})
    assignee.get(f"/tasks/api/tasks/{task_id}/")
    for token in (expired_token, forged_token, "garbage"):
        anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        anonymous.get("/tasks/api/tasks/")
    staff.get("/tasks/api/tasks/999999/")
    staff.post("/tasks/api/tasks/create_task_for_ticket/", {"ticket_id": 999999}, format="json")

    logged = capture_everything.text
    assert upstream_payload["ticket_id"] in logged  # the pipeline did log, by ticket number
    assert "Rejected ticket message" in logged
    for value in _personal_values(upstream_payload):
        assert value not in logged
    for token in (staff_token, assignee_token, expired_token, forged_token):
        assert token not in logged
        assert token.split(".")[2] not in logged  # not even the signature


@pytest.mark.django_db
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
@given(
    placement=st.sampled_from(["employee", "ticket_id", "subject", "description", "unknown_key", "status"]),
    subject=st.sampled_from(["ok", None, 42, "x" * 300]),
)
def test_personal_data_anywhere_in_a_message_never_reaches_the_logs(caplog, placement, subject):
    """Whether the message is stored or rejected, its personal data stays out of the logs."""
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    personal = {"email": f"{MARKER}@example.com", "first_name": MARKER}
    payload = {"ticket_id": "TX-LOG-1", "subject": subject}
    payload[placement] = personal if placement in ("employee", "ticket_id", "unknown_key") else MARKER

    tasks.receive_ticket(payload)

    assert caplog.records  # the outcome was logged
    assert MARKER not in caplog.text
