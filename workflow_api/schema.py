"""OpenAPI generation: the error responses every endpoint can give, and how callers authenticate."""

import inspect

from drf_spectacular.authentication import SessionScheme as SpectacularSessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from workflow_api.authentication import ACCESS_TOKEN_COOKIE


class ErrorSerializer(serializers.Serializer):
    """The body of every non-validation error: DRF's `detail`, plus `code` for domain errors."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False)


ERROR = ErrorSerializer
VALIDATION_ERROR = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid input: field name -> list of messages, or `detail` and `code`.",
)
_COMMON_ERRORS = {
    "401": OpenApiResponse(ERROR, description="No valid credentials."),
    "403": OpenApiResponse(ERROR, description="Authenticated, but not allowed to do this."),
    "429": OpenApiResponse(ERROR, description="Too many requests; retry after `Retry-After` seconds."),
}
_BODY_ERRORS = {
    "413": OpenApiResponse(ERROR, description="Request body too large."),
    "415": OpenApiResponse(ERROR, description="Unsupported request content type."),
}


# Operation summaries for the standard viewset actions, by model name.
_SUMMARIES = {
    "list": "List {plural}",
    "create": "Create a {name}",
    "retrieve": "Get one {name}",
    "update": "Replace a {name}",
    "partial_update": "Change some fields of a {name}",
    "destroy": "Delete a {name}",
}


class AutoSchema(SpectacularAutoSchema):
    """Adds the errors DRF and the exception handler produce, so clients (and fuzzers) can rely on them.

    Summaries and descriptions are written for the API's users: code docstrings
    (views, serializer base classes) never reach the schema.
    """

    def get_description(self) -> str:
        # Only what @extend_schema says: a docstring is written for the code's readers.
        return ""

    def get_summary(self) -> str | None:
        action = getattr(self.view, "action", None) or self.method.lower()
        model = getattr(getattr(self.view, "queryset", None), "model", None)
        name = model._meta.verbose_name if model is not None else "resource"
        plural = model._meta.verbose_name_plural if model is not None else "resources"
        template = _SUMMARIES.get(action)
        summary = (
            template.format(name=name, plural=plural)
            if template is not None
            else f"{action.replace('_', ' ').capitalize()} ({name})"
        )
        staff_writes = any(
            permission.__name__ == "IsStaffOrReadOnly" for permission in self.view.permission_classes
        )
        if staff_writes and self.method not in ("GET", "HEAD", "OPTIONS"):
            summary += " (staff)"
        return summary

    def _map_basic_serializer(self, serializer: object, direction: str) -> dict:
        component = super()._map_basic_serializer(serializer, direction)
        # A serializer's own docstring describes it; an inherited one describes a base class.
        cls = serializer if isinstance(serializer, type) else type(serializer)
        own = cls.__dict__.get("__doc__")
        doc = inspect.cleandoc(own) if own else ""
        if doc:
            component["description"] = doc
        else:
            component.pop("description", None)
        return component

    def _get_filter_parameters(self) -> list[dict]:
        # django-filter reads `?status=` as "no filter" (the browsable API's
        # filter form sends every field); the schema says so instead of
        # claiming that only the typed values are accepted.
        parameters = super()._get_filter_parameters()
        for parameter in parameters:
            schema = parameter["schema"]
            if schema.get("type") != "string" or "enum" in schema:
                parameter["schema"] = {"anyOf": [schema, {"type": "string", "enum": [""]}]}
            description = parameter.get("description", "")
            parameter["description"] = f"{description} Empty: no filter.".strip()
        return parameters

    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        extra: dict = dict(_COMMON_ERRORS)
        has_path_params = "{" in self.path
        if has_path_params or self._is_list_view():
            # A missing object, or a page number past the end.
            extra["404"] = OpenApiResponse(ERROR, description="Not found.")
        if self.method in ("POST", "PUT", "PATCH") or self._is_list_view():
            extra["400"] = VALIDATION_ERROR
        if self.method in ("POST", "PUT", "PATCH"):
            extra.update(_BODY_ERRORS)
        for code, response in extra.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses


BEARER_DESCRIPTION = (
    "A JWT in `Authorization: Bearer <token>`, signed with the service's `JWT_SIGNING_KEY`; "
    "claims `user_id` and, for staff, `is_staff`. Locally, print one with "
    "`.venv/bin/python manage.py mint_dev_token --user-id 3` (add `--admin` for staff) and paste "
    "the token alone, without `Bearer `, into Authorize."
)


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "workflow_api.authentication.JWTAuthentication"
    # Components are listed by name: "bearerAuth" comes first in the Authorize dialog.
    name = ["bearerAuth", "jwtCookie"]

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict]:
        # Either one: a header or the frontend's cookie.
        return [{"bearerAuth": []}, {"jwtCookie": []}]

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict]:
        bearer = build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106  (the scheme's name, not a secret)
            bearer_format="JWT",
        )
        return [
            {**bearer, "description": BEARER_DESCRIPTION},
            {
                "type": "apiKey",
                "in": "cookie",
                "name": ACCESS_TOKEN_COOKIE,
                "description": (
                    f"The same JWT in the `{ACCESS_TOKEN_COOKIE}` cookie, as the frontend sends it; "
                    "unsafe methods then need the CSRF token too. A browser sets it, not this page."
                ),
            },
        ]


class SessionScheme(SpectacularSessionScheme):
    """The project's session authentication is DRF's, documented the same way."""

    target_class = "workflow_api.authentication.SessionAuthentication"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict:
        return {
            **super().get_security_definition(auto_schema),
            "description": (
                "A Django session from logging in to /admin/ (staff accounts of this service), "
                "for the browsable API. Not for a JWT: paste those under bearerAuth."
            ),
        }


# Descriptions of fields that say nothing about themselves in the code (ids,
# timestamps, pages, the ticket's copied fields), by "Component.field" first,
# then by field name. Fields with a help text keep it.
_AVAILABILITY_STATUS = "Available, away (work only when nobody available is eligible) or unavailable."
_AVAILABILITY_UNTIL = "When the status ends and the user counts as available again; null: until changed."
_FIELD_DESCRIPTIONS = {
    "Task.status": "The task's status.",
    "Task.task_id": "The task's id.",
    "Task.workflow_id": "The id of the task's workflow.",
    "Task.current_step": "The id of the step the task is at; null once it has none.",
    "Task.users": "The assignees of the current step, oldest first.",
    "Task.ticket_subject": "The ticket's subject.",
    "Task.workflow_name": "The workflow's name.",
    "Task.current_step_name": "The current step's name.",
    "Task.current_step_role": "The role the current step is assigned from.",
    "Task.assigned_users_count": "How many users are assigned to the current step.",
    "Task.fetched_at": "When the task was last fetched by a consumer that records it; null if never.",
    "AssignedUser.status": "The assignee's status on this step.",
    "AssignedUser.role": "The role the user was assigned from.",
    "AssignedUser.assigned_on": "When the user was assigned (ISO 8601, UTC, Z suffix).",
    "UserAssignmentRequest.status": "The assignee's status to start with (default assigned).",
    "UserAssignmentRequest.role": "The role to record the assignment under (default: the step's).",
    "UserStatusUpdateRequest.status": "The assignee's new status.",
    "AvailabilityUpdateRequest.status": _AVAILABILITY_STATUS,
    "Availability.status": _AVAILABILITY_STATUS,
    "AvailabilityDetail.status": _AVAILABILITY_STATUS,
    "Availability.until": _AVAILABILITY_UNTIL,
    "AvailabilityDetail.until": _AVAILABILITY_UNTIL,
    "TaskEvent.kind": "What happened.",
    "TaskEvent.at": "When it happened.",
    "TaskEvent.step_id": "The step it happened on; null if none or since deleted.",
    "NextAssignees.strategy": "The step's assignment strategy.",
    "NextAssignees.next": "The coming decisions, in order.",
    "NextAssigneesEntry.position": "1 for the next ticket, 2 for the one after, and so on.",
    "AssignmentReport.role": "The role's name.",
    "AssignmentReport.users": "One entry per user TTS lists for the role.",
    "StartedAssignment.role": "The role of the assignment.",
    "WorkflowStatistics.total": "Tasks of the workflow.",
    "TaskStatistics.total_tasks": "Tasks in all.",
    "TaskStatistics.by_workflow": "Counts per workflow, by workflow id.",
    "Workflow.steps": "The workflow's steps, by order.",
    "Step.role_name": "The step's role's name.",
    "ReassignRequest.from_user_id": "The assignee whose place moves.",
    "CreateTaskForTicketRequest.ticket_id": "The ticket's database id.",
    "Error.detail": "What went wrong, for people.",
    "Error.code": "For domain errors, a stable code: invalid_transition, conflict, not_found, invalid, ...",
    "count": "Rows matching the query, over all pages.",
    "next": "The next page's URL; null on the last page.",
    "previous": "The previous page's URL; null on the first page.",
    "results": "This page's rows.",
    "id": "The row's database id.",
    "task_id": "The task's id.",
    "step_id": "The step's id.",
    "role_id": "The role's id.",
    "workflow_id": "The workflow's id.",
    "workflow_name": "The workflow's name.",
    "user_id": "A user id, as TTS lists users and as tokens name them (claim user_id).",
    "userID": "A user id, as TTS lists users and as tokens name them (claim user_id).",
    "username": "The user's name, if the caller gave it.",
    "email": "The user's email address, if the caller gave it.",
    "role": "A role's name, as TTS spells it.",
    "since": "Start of the window (included).",
    "until": "End of the window (excluded).",
    "created_at": "When it was created.",
    "updated_at": "When it last changed.",
    "changed_at": "When the change was made.",
    "fetched_at": "When it was last fetched by a consumer that records it; null if never.",
    "ticket_number": "The producer's ticket number.",
    "original_ticket_id": "The producer's database id of the ticket (its `id`).",
    "subject": "The ticket's subject.",
    "description": "The ticket's description.",
    "department": "The ticket's department, used for routing.",
    "category": "The ticket's category, used for routing.",
    "sub_category": "The ticket's sub category, used for routing; blank if none.",
    "priority": "The ticket's priority, as the producer sent it.",
    "status": "The ticket's status, as the producer sent it.",
    "is_task_allocated": "Whether the ticket has its task.",
    "allocation_error": "Why the last allocation attempt failed or waits; blank if it did not.",
    "allocation_error_detail": "The failure's details.",
    "allocation_failure_reason": "The reason and its details, for people; blank once allocated.",
    "allocation_attempts": "Allocation attempts counted so far.",
    "last_allocation_attempt_at": "When the last attempt started; null before the first.",
    "ticket_data": "The producer's whole message, as received.",
}


def describe_fields(result: dict, generator: object, request: object, public: bool) -> dict:
    """Postprocessing hook: every component property gets a description."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        for field, schema in (component.get("properties") or {}).items():
            if schema.get("description"):
                continue
            text = _FIELD_DESCRIPTIONS.get(f"{name}.{field}") or _FIELD_DESCRIPTIONS.get(field)
            if text is None:
                continue
            if "$ref" in schema or "allOf" in schema:
                # A description beside $ref is ignored by OpenAPI 3.0 tools: wrap it.
                ref = {key: schema.pop(key) for key in list(schema) if key in ("$ref", "allOf")}
                schema["allOf"] = ref.get("allOf") or [{"$ref": ref["$ref"]}]
            schema["description"] = text
    return result
