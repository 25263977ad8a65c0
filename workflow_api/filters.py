"""Query-string filters that refuse malformed values (400) instead of ignoring or crashing on them."""

import django_filters
from django import forms
from django.db import models
from django.db.models import QuerySet
from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework.request import Request
from rest_framework.views import APIView

# Ids are positive and fit a 64-bit column; anything else matches nothing and,
# unchecked, would reach the database driver (SQLite overflows on larger ints).
MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """An object id: a whole number between 1 and 2**63 - 1."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class _StrictBooleanField(forms.Field):
    TRUE = frozenset({"true", "True", "1"})
    FALSE = frozenset({"false", "False", "0"})

    def to_python(self, value: object) -> bool | None:
        if value in (None, ""):
            return None
        if value in self.TRUE:
            return True
        if value in self.FALSE:
            return False
        raise forms.ValidationError("Enter true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    """`true`/`false` (or 1/0); django-filter's own would treat `?flag=ture` as no filter at all."""

    field_class = _StrictBooleanField


class FilterSet(django_filters.FilterSet):
    """The project's base FilterSet: boolean model fields get the strict filter."""

    FILTER_DEFAULTS = {
        **django_filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend; a request that names none of the view's filters gets the queryset unfiltered.

    An absent filter leaves the queryset as it is (django-filter skips empty
    values), so for such a request, most list requests, building and
    validating the filter form changed nothing and cost about 0.2 ms.
    """

    def filter_queryset(self, request: Request, queryset: QuerySet, view: APIView) -> QuerySet:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not _names_a_filter(request.query_params, filterset_class):
            return queryset
        return super().filter_queryset(request, queryset, view)


def _names_a_filter(params: QueryDict, filterset_class: type[django_filters.FilterSet]) -> bool:
    filters = filterset_class.base_filters
    if any(filter_.extra.get("required") for filter_ in filters.values()):
        return True
    # By prefix: range and multi-value widgets read their filter's name with a suffix.
    names = tuple(filters)
    return bool(names) and any(key.startswith(names) for key in params)
