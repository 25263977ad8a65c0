"""The OpenAPI schema describes every operation, including the spec's custom actions, without warnings."""

from io import StringIO

import pytest
import yaml
from django.core.management import call_command

CUSTOM_ACTIONS = {
    "/tasks/api/tasks/create_task_for_ticket/": "CreateTaskForTicketRequest",
    "/tasks/api/tasks/{task_id}/assign_user/": "UserAssignmentRequest",
    "/tasks/api/tasks/{task_id}/update_user_status/": "UserStatusUpdateRequest",
}


@pytest.fixture(scope="module")
def schema() -> dict:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def test_schema_generates_and_validates_without_warnings(schema):
    assert schema["openapi"].startswith("3.")


def test_custom_actions_document_their_request_bodies(schema):
    for path, component in CUSTOM_ACTIONS.items():
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{component}"}, path


@pytest.mark.parametrize(
    "path",
    [
        "/tasks/api/tasks/create_task_for_ticket/",
        "/tasks/api/tasks/{task_id}/assign_user/",
        "/tasks/api/tasks/{task_id}/update_user_status/",
        "/tasks/api/tasks/{task_id}/complete_task/",
        "/tasks/api/tasks/{task_id}/move_to_next_step/",
    ],
)
def test_task_actions_answer_with_the_task_and_document_their_errors(schema, path):
    responses = schema["paths"][path]["post"]["responses"]

    assert responses["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Task"}
    assert {"401", "403", "404", "409"} <= responses.keys()


def test_actions_without_input_take_no_body(schema):
    for action in ("complete_task", "move_to_next_step"):
        path = f"/tasks/api/tasks/{{task_id}}/{action}/"
        assert "requestBody" not in schema["paths"][path]["post"]


def test_statistics_response_is_described(schema):
    response = schema["paths"]["/tasks/api/tasks/workflow_statistics/"]["get"]["responses"]["200"]
    component = schema["components"]["schemas"]["TaskStatistics"]
    body = response["content"]["application/json"]["schema"]

    assert body == {"$ref": "#/components/schemas/TaskStatistics"}
    assert set(component["required"]) == {"total_tasks", "by_status", "by_workflow"}


def test_task_users_are_described_as_assignment_objects(schema):
    users = schema["components"]["schemas"]["Task"]["properties"]["users"]

    assert users["items"] == {"$ref": "#/components/schemas/AssignedUser"}


def test_every_operation_requires_a_token_or_a_session(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            schemes = {name for requirement in operation["security"] for name in requirement}
            assert schemes == {"bearerAuth", "jwtCookie", "cookieAuth"}, (method, path)


def test_schema_and_docs_are_served_to_authenticated_callers(staff):
    schema_response = staff.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs_response = staff.get("/api/docs/")

    assert schema_response.status_code == 200
    assert "/tasks/api/tasks/{task_id}/assign_user/" in schema_response.json()["paths"]
    assert docs_response.status_code == 200
    assert b"swagger-ui" in docs_response.content


def test_docs_page_loads_swagger_ui_from_the_service_itself_not_a_cdn(staff):
    page = staff.get("/api/docs/").content.decode()

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn.jsdelivr.net" not in page


def test_reassign_answers_with_the_task_and_documents_its_errors(schema):
    operation = schema["paths"]["/tasks/api/tasks/{task_id}/reassign/"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]

    assert body == {"$ref": "#/components/schemas/ReassignRequest"}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Task"
    }
    assert {"400", "403", "404", "409", "503"} <= operation["responses"].keys()


def test_next_assignees_document_the_count_limit(schema):
    operation = schema["paths"]["/workflow/api/steps/{step_id}/next_assignees/"]["get"]
    (count,) = [parameter for parameter in operation["parameters"] if parameter["name"] == "count"]

    assert (count["schema"]["minimum"], count["schema"]["maximum"]) == (1, 100)
    assert {"400", "503"} <= operation["responses"].keys()


def test_availability_is_set_with_a_json_body(schema):
    operation = schema["paths"]["/tasks/api/availability/{user_id}/"]["put"]

    assert list(operation["requestBody"]["content"]) == ["application/json"]
