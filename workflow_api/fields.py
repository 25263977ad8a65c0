"""Serializer fields shared by the apps' APIs."""

from django.db import models
from rest_framework import serializers
from rest_framework.fields import empty


class DocumentedLengthCharField(serializers.CharField):
    """A CharField whose max_length holds for the value as sent, as the OpenAPI schema says.

    DRF trims surrounding whitespace before checking the length, so a value
    over the documented maximum would pass if trimming brought it under.
    """

    def run_validation(self, data=empty):
        if self.max_length is not None and isinstance(data, str) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)


class ModelSerializer(serializers.ModelSerializer):
    """ModelSerializer whose text fields keep to their documented maxLength."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: DocumentedLengthCharField,
    }
