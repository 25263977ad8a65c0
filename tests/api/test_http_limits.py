"""Browser origins, body sizes and methods the API does not offer."""

import json

import pytest
from django.test import override_settings

from tickets.models import WorkflowTicket

ORIGIN = "https://helpdesk.example.com"


def test_no_origin_is_allowed_by_default(staff, db):
    response = staff.get("/tasks/api/tasks/", HTTP_ORIGIN=ORIGIN)

    assert "Access-Control-Allow-Origin" not in response


def test_configured_frontend_origin_is_allowed_and_others_are_not(staff, db):
    with override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN]):
        allowed = staff.get("/tasks/api/tasks/", HTTP_ORIGIN=ORIGIN)
        preflight = staff.options(
            "/tasks/api/tasks/",
            HTTP_ORIGIN=ORIGIN,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
        )
        other = staff.get("/tasks/api/tasks/", HTTP_ORIGIN="https://evil.example.com")

    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert preflight.status_code == 200
    assert "authorization" in preflight["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in other


def test_body_over_the_limit_is_413_before_anything_is_read(staff, settings, assigned_task):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"userID": 9, "username": "x" * 2000})

    response = staff.post(
        f"/tasks/api/tasks/{assigned_task.pk}/assign_user/", body, content_type="application/json"
    )

    assert response.status_code == 413
    assigned_task.refresh_from_db()
    assert 9 not in assigned_task.get_assigned_user_ids()


def test_body_under_the_limit_is_accepted(staff, settings, assigned_task):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = staff.post(f"/tasks/api/tasks/{assigned_task.pk}/assign_user/", {"userID": 9}, format="json")

    assert response.status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/tasks/api/tasks/", "/tickets/api/tickets/"])
def test_unsafe_methods_on_read_only_lists_are_405(staff, db, method, path):
    assert getattr(staff, method)(path, {}, format="json").status_code == 405


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("resource", ["roles", "workflows", "steps"])
def test_bulk_writes_on_configuration_lists_are_405(staff, db, method, resource):
    assert getattr(staff, method)(f"/workflow/api/{resource}/", {}, format="json").status_code == 405


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_tasks_and_tickets_cannot_be_edited_or_deleted_directly(staff, assigned_task, method):
    task_response = getattr(staff, method)(f"/tasks/api/tasks/{assigned_task.pk}/", {}, format="json")
    ticket_response = getattr(staff, method)(
        f"/tickets/api/tickets/{assigned_task.ticket_id}/", {}, format="json"
    )

    assert task_response.status_code == 405
    assert ticket_response.status_code == 405
    assert WorkflowTicket.objects.filter(pk=assigned_task.ticket_id).exists()


@pytest.mark.parametrize(
    "action", ["assign_user", "complete_task", "update_user_status", "move_to_next_step"]
)
def test_task_actions_answer_405_to_get(staff, assigned_task, action):
    assert staff.get(f"/tasks/api/tasks/{assigned_task.pk}/{action}/").status_code == 405


@pytest.mark.parametrize("path", ["/tasks/api/tasks/0.5/", "/tasks/api/nothing-here/", "/no/such/page/"])
def test_unmatched_urls_answer_json_404(staff, db, path):
    response = staff.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


def test_a_refused_body_still_carries_cors_headers_for_the_frontend(staff, settings, assigned_task):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 16
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]

    response = staff.post(
        f"/tasks/api/tasks/{assigned_task.pk}/assign_user/",
        {"userID": 9, "username": "long enough to pass the limit"},
        format="json",
        HTTP_ORIGIN=ORIGIN,
    )

    assert response.status_code == 413
    assert response["Access-Control-Allow-Origin"] == ORIGIN
