"""One page size policy for every list endpoint."""

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.views import APIView


class DefaultPagination(PageNumberPagination):
    """`?page=` and `?page_size=`; the page size is capped so no request can ask for the whole table."""

    page_size_query_param = "page_size"

    # Read per request, so settings overrides (tests, environment) apply.
    @property
    def page_size(self) -> int:
        return settings.API_PAGE_SIZE

    @property
    def max_page_size(self) -> int:
        return settings.API_MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        # DRF silently falls back to the default on a malformed value; a client
        # asking for something meaningless should hear about it instead.
        raw = request.query_params.get(self.page_size_query_param)
        if not raw:
            return self.page_size
        if not raw.isdecimal() or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: ["A positive integer is required."]})
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view: APIView) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            # Empty means the default, as for DRF's `?page=`.
            parameter["schema"] = {
                "anyOf": [{**parameter["schema"], "minimum": 1}, {"type": "string", "enum": [""]}]
            }
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Results per page (default {self.page_size}; "
                    f"larger values are capped at {self.max_page_size})."
                )
        return parameters
