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
