"""A frontend developer holding only a JWT can read the docs, authorize there and find what a task needs."""

import re

import pytest
from rest_framework.test import APIClient

from conftest import client_as, make_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema() -> dict:
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    return response.json()


def test_docs_and_schema_open_without_authentication():
    anonymous = APIClient()

    docs = anonymous.get("/api/docs/")
    schema = anonymous.get("/api/schema/")

    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert schema.status_code == 200
    # A browser shows JSON instead of downloading an OpenAPI media type.
    assert schema["Content-Type"].startswith("application/json")


def test_schema_still_answers_yaml_to_who_asks_for_it():
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")

    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi: ")


def test_a_stale_token_does_not_lock_anyone_out_of_the_docs():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/schema/").status_code == 200


def test_every_call_in_the_docs_still_needs_a_token():
    assert APIClient().get("/tasks/api/tasks/").status_code == 401


def test_bearer_comes_first_and_says_how_to_get_a_token_locally(schema):
    schemes = schema["components"]["securitySchemes"]

    assert next(iter(schemes)) == "bearerAuth"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert "manage.py mint_dev_token --user-id 3" in schemes["bearerAuth"]["description"]
    assert all(scheme.get("description") for scheme in schemes.values())


def test_every_operation_has_a_summary_and_no_code_docstring(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert "description" not in operation or operation["description"].strip(), (method, path)


def test_no_internal_docstring_reaches_the_schema(schema):
    text = str(schema)

    assert "ModelSerializer" not in text
    assert "task.selectors" not in text
    # No dotted Python paths of this code base anywhere in the descriptions.
    assert not re.search(r"\b(task|tickets|workflow|workflow_api)\.[a-z_]+\.[a-z_]+", text)


def test_tasks_carry_their_ticket_number_for_assignees(role, workflow):
    task = make_task(workflow, number="TX20251110000042", users=[{"userID": 3}])

    listed = client_as(3).get("/tasks/api/tasks/").json()["results"][0]
    detail = client_as(3).get(f"/tasks/api/tasks/{task.pk}/").json()

    assert listed["ticket_number"] == detail["ticket_number"] == "TX20251110000042"
    assert listed["ticket_id"] == task.ticket_id


def test_the_task_component_documents_ticket_id_and_ticket_number(schema):
    properties = schema["components"]["schemas"]["Task"]["properties"]

    assert "database id" in properties["ticket_id"]["description"]
    assert "producer" in properties["ticket_number"]["description"]


def test_every_field_of_every_component_is_described(schema):
    undescribed = [
        f"{name}.{field}"
        for name, component in schema["components"]["schemas"].items()
        for field, property_schema in (component.get("properties") or {}).items()
        if not property_schema.get("description")
    ]

    assert undescribed == []


def test_a_number_sent_for_a_text_field_is_refused_as_the_schema_says(api_client):
    response = api_client.post(
        "/workflow/api/workflows/", {"name": -761719, "department": "D", "category": "C"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["name"] == ["Not a valid string."]
