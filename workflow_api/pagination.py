"""One page size policy for every list endpoint."""

import base64
import binascii
import json
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
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


class KeysetPagination(DefaultPagination):
    """Pages of a large table in the view's `keyset_ordering`; cost stays flat whatever the table's size.

    `next` and `previous` carry a `cursor` (the last or first row's keys):
    the next page is an index range after it, never an OFFSET. `?page=`
    still works for the first `API_MAX_OFFSET_ROWS` rows; deeper, follow
    `next`. `count` is the view's `known_count()` when it has one (exact,
    from kept counters); otherwise exact up to `API_EXACT_COUNT_LIMIT`
    matching rows (a count that stops there) and, above it, PostgreSQL's
    estimate of the rows the list's query returns.
    """

    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: APIView | None = None) -> list:
        self.request = request
        self.page_size_now = self.get_page_size(request)
        self.ordering = tuple(view.keyset_ordering)
        # A view may know its count without counting rows (kept counters).
        known = getattr(view, "known_count", None)
        self.count = known() if known is not None else None
        if self.count is None:
            self.count = estimated_count(queryset)
        raw_cursor = request.query_params.get(self.cursor_query_param)
        forward, offset = True, 0
        if raw_cursor:
            forward, keys = self._decode(raw_cursor, queryset)
            queryset = queryset.filter(self._after(keys, forward=forward))
        else:
            offset = (self._page_number(request) - 1) * self.page_size_now
        ordering = self.ordering if forward else tuple(_reversed(field) for field in self.ordering)
        rows = list(queryset.order_by(*ordering)[offset : offset + self.page_size_now + 1])
        if not rows and offset:
            raise NotFound("Invalid page.")  # as DRF answers a page past the end
        more = len(rows) > self.page_size_now
        rows = rows[: self.page_size_now]
        if not forward:
            rows.reverse()
        if raw_cursor:
            self.has_next, self.has_previous = (more, True) if forward else (True, more)
        else:
            self.has_next, self.has_previous = more, offset > 0
        # The links need only the first and last rows' keys. Keeping the rows
        # would tie the page to the view, which DRF holds in reference cycles
        # (view, request, response): every task of every page would then wait
        # for the cyclic garbage collector instead of being freed at once.
        self.first_keys = self._keys(rows[0]) if rows else None
        self.last_keys = self._keys(rows[-1]) if rows else None
        return rows

    def get_paginated_response(self, data: list) -> Response:
        return Response(
            {
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_next_link(self) -> str | None:
        if not self.has_next or self.last_keys is None:
            return None
        return self._link(self.last_keys, forward=True)

    def get_previous_link(self) -> str | None:
        if not self.has_previous or self.first_keys is None:
            return None
        return self._link(self.first_keys, forward=False)

    def _keys(self, row: object) -> list:
        return [_to_json(getattr(row, field.lstrip("-"))) for field in self.ordering]

    def _link(self, keys: list, *, forward: bool) -> str:
        token = base64.urlsafe_b64encode(json.dumps(["n" if forward else "p", keys]).encode()).decode()
        url = remove_query_param(self.request.build_absolute_uri(), self.page_query_param)
        return replace_query_param(url, self.cursor_query_param, token.rstrip("="))

    def _decode(self, raw: str, queryset: QuerySet) -> tuple[bool, list]:
        try:
            direction, keys = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            if direction not in ("n", "p") or len(keys) != len(self.ordering):
                raise ValueError
            model = queryset.model
            values = [
                model._meta.get_field(field.lstrip("-")).to_python(key)
                for field, key in zip(self.ordering, keys, strict=True)
            ]
        except (ValueError, TypeError, DjangoValidationError, binascii.Error, UnicodeDecodeError):
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None
        if any(value is None for value in values):
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]})
        return direction == "n", values

    def _after(self, keys: list, *, forward: bool) -> Q:
        """Rows after `keys` in the list's order (before them when going back)."""
        # All keys sort the same way here (descending, newest first); a row
        # comparison keeps the condition one index range.
        descending = self.ordering[0].startswith("-")
        later = descending == forward
        names = [field.lstrip("-") for field in self.ordering]
        if len(names) == 1:
            return Q(**{f"{names[0]}__{'lt' if later else 'gt'}": keys[0]})
        lookup = TupleLessThan if later else TupleGreaterThan
        return Q(lookup(Tuple(*(F(name) for name in names)), tuple(keys)))

    def _page_number(self, request: Request) -> int:
        raw = request.query_params.get(self.page_query_param)
        if not raw:
            return 1
        if not raw.isdecimal() or int(raw) < 1:
            raise NotFound("Invalid page.")
        number = int(raw)
        if (number - 1) * self.page_size_now >= settings.API_MAX_OFFSET_ROWS:
            raise ValidationError(
                {
                    self.page_query_param: [
                        f"Pages start within the first {settings.API_MAX_OFFSET_ROWS} results; "
                        "follow `next` links beyond."
                    ]
                }
            )
        return number

    def get_schema_operation_parameters(self, view: APIView) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["description"] = (
                    f"A page number, for the first {settings.API_MAX_OFFSET_ROWS} results; "
                    "beyond, follow `next`."
                )
        parameters.append(
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where a page starts: taken from a `next` or `previous` link, never built.",
                "schema": {"type": "string"},
            }
        )
        return parameters

    def get_paginated_response_schema(self, schema: dict) -> dict:
        response = super().get_paginated_response_schema(schema)
        response["properties"]["count"]["description"] = (
            f"Matching results: exact up to {settings.API_EXACT_COUNT_LIMIT}, or where kept counts "
            "answer (staff task lists filtered by status and workflow only); otherwise, above that, "
            "PostgreSQL's estimate (may be off by a few percent)."
        )
        for name in ("next", "previous"):
            response["properties"][name]["description"] = f"The {name} page (a `cursor` link), or null."
        return response


def estimated_count(queryset: QuerySet) -> int:
    """How many rows `queryset` holds: exact up to API_EXACT_COUNT_LIMIT, above it the planner's estimate.

    The exact count stops at the limit, so it never costs more than reading
    that many index entries; the estimate costs one EXPLAIN.
    """
    limit = settings.API_EXACT_COUNT_LIMIT
    # Only the matching rows' keys: no joins, no deferred columns to carry.
    queryset = queryset.order_by().values("pk")
    exact = queryset[: limit + 1].count()
    if exact <= limit or connection.vendor != "postgresql":
        return exact if exact <= limit else queryset.count()
    plan = json.loads(queryset.explain(format="json"))
    return max(int(plan[0]["Plan"]["Plan Rows"]), limit + 1)


def _reversed(field: str) -> str:
    return field[1:] if field.startswith("-") else f"-{field}"


def _to_json(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value
