"""The one place where domain errors become HTTP responses."""

import logging

from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflow_api import errors, throttling

logger = logging.getLogger(__name__)

_STATUS_BY_ERROR = {
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.InvalidTransition: status.HTTP_409_CONFLICT,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.DependencyUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, errors.InvalidInput) and exc.field:
        return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, errors.DomainError):
        http_status = next(
            (code for cls, code in _STATUS_BY_ERROR.items() if isinstance(exc, cls)),
            status.HTTP_400_BAD_REQUEST,
        )
        return Response({"detail": exc.message, "code": exc.code}, status=http_status)
    if isinstance(exc, ProtectedError | RestrictedError):
        # Deleting configuration that tasks or steps still use: the caller must detach it first.
        return Response(
            {"detail": "This object is still in use and cannot be deleted.", "code": "protected"},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, IntegrityError):
        # A unique value taken by a concurrent request after validation passed.
        logger.info("Integrity conflict on %s: %s", context["request"].path, type(exc).__name__)
        return Response(
            {"detail": "This conflicts with data saved meanwhile; reload and retry.", "code": "conflict"},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        exc = _throttle_anonymous(exc, context)
    return drf_exception_handler(exc, context)


def _throttle_anonymous(exc: exceptions.APIException, context: dict) -> exceptions.APIException:
    """Count a request refused for want of credentials against the anonymous rate.

    Every endpoint needs a caller, so DRF's own throttles (which run after the
    permission check) never see anonymous requests; without this, guessing
    tokens would be unlimited.
    """
    throttle = throttling.AnonRateThrottle()
    if throttle.allow_request(context["request"], context["view"]):
        return exc
    return exceptions.Throttled(wait=throttle.wait())


# Django's own error pages, for URLs no API view matched (and for crashes):
# API clients get JSON like every other error; the admin keeps its HTML pages.


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/admin/"):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=status.HTTP_404_NOT_FOUND)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/admin/"):
        return defaults.server_error(request)
    return JsonResponse(
        {"detail": "Internal server error.", "code": "server_error"},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
