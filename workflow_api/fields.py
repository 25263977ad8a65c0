"""Serializer fields shared by the apps' APIs."""

from django.db import models
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.utils import html


class DocumentedLengthCharField(serializers.CharField):
    """A CharField that takes strings only, whose max_length holds for the value as sent, as the schema says.

    DRF turns a number into its text, and trims surrounding whitespace before
    checking the length, so a number, or a value over the documented maximum
    that trimming brought under it, would pass.
    """

    def run_validation(self, data=empty):
        if data is not empty and data is not None and not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and isinstance(data, str) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)


class _NullOnlyAsNull:
    """Null is JSON's null only, as the schema says.

    DRF reads an empty form value of a nullable field as null, or an
    optional one as absent; here it is refused like any other value that is
    not a number or a date.
    """

    def get_value(self, dictionary: object) -> object:
        if html.is_html_input(dictionary) and dictionary.get(self.field_name) == "":
            return ""
        return super().get_value(dictionary)


class IntegerField(_NullOnlyAsNull, serializers.IntegerField):
    pass


class DateTimeField(_NullOnlyAsNull, serializers.DateTimeField):
    pass


class DurationField(_NullOnlyAsNull, serializers.DurationField):
    """A duration written as DRF writes one ("04:00:00", "1 02:00:00"): a string, never a bare number."""

    def to_internal_value(self, value: object):
        if not isinstance(value, str):
            self.fail("invalid", format="[DD] [HH:[MM:]]ss[.uuuuuu]")
        return super().to_internal_value(value)


class ModelSerializer(serializers.ModelSerializer):
    """ModelSerializer whose text fields keep to their documented maxLength and numbers to their type."""

    serializer_field_mapping = {
        **{
            model_field: IntegerField if field is serializers.IntegerField else field
            for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()
        },
        models.CharField: DocumentedLengthCharField,
        models.TextField: DocumentedLengthCharField,
        models.DurationField: DurationField,
    }
