"""One page size policy for every list endpoint."""

from django.conf import settings
from rest_framework.pagination import PageNumberPagination


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
