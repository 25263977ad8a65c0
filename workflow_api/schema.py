"""OpenAPI generation: the error responses every endpoint can give, and how callers authenticate."""

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


class AutoSchema(SpectacularAutoSchema):
    """Adds the errors DRF and the exception handler produce, so clients (and fuzzers) can rely on them."""

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


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "workflow_api.authentication.JWTAuthentication"
    name = ["jwtBearer", "jwtCookie"]

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict]:
        # Either one: a header or the frontend's cookie.
        return [{"jwtBearer": []}, {"jwtCookie": []}]

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict]:
        return [
            build_bearer_security_scheme_object(
                header_name="Authorization",
                token_prefix="Bearer",  # noqa: S106  (the scheme's name, not a secret)
                bearer_format="JWT",
            ),
            {"type": "apiKey", "in": "cookie", "name": ACCESS_TOKEN_COOKIE},
        ]


class SessionScheme(SpectacularSessionScheme):
    """The project's session authentication is DRF's, documented the same way."""

    target_class = "workflow_api.authentication.SessionAuthentication"
