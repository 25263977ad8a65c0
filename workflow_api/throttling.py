"""Request rate limits for the API (DRF throttles), and the client address they and the login lockout use.

Counters live in the `default` cache: Redis when DJANGO_CACHE_URL points at
it, so that every gunicorn worker and machine counts together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.utils.module_loading import import_string
from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.request import Request

from workflow_api.permissions import is_staff

if TYPE_CHECKING:
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str:
    """The caller's address: REMOTE_ADDR, or the X-Forwarded-For entry added by the outermost trusted proxy.

    Only the last TRUSTED_PROXY_COUNT entries of X-Forwarded-For were written
    by our own proxies; anything before them is whatever the client sent.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if not forwarded:
        return remote
    return forwarded[-min(proxies, len(forwarded))]


def caller_is_staff(request: Request) -> bool:
    return is_staff(request.user)


def _exemptions() -> list[Callable[[Request], bool]]:
    return [import_string(path) for path in settings.API_THROTTLE_EXEMPT]


def is_exempt(request: Request) -> bool:
    """True when any check in API_THROTTLE_EXEMPT (dotted paths to `(request) -> bool`) says so."""
    return any(check(request) for check in _exemptions())


class _Limited:
    def allow_request(self, request: Request, view: APIView) -> bool:
        if is_exempt(request):
            return True
        try:
            return super().allow_request(request, view)
        except RedisError as exc:
            # A cache outage must not take the API down with it: let the request through.
            logger.warning("Throttle cache unavailable, request not counted: %s", type(exc).__name__)
            return True

    def get_ident(self, request: Request) -> str:
        return client_ip(request)


class AnonRateThrottle(_Limited, throttling.AnonRateThrottle):
    """Callers without valid credentials, per address: API_THROTTLE_ANON_RATE."""

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_ANON_RATE


class UserRateThrottle(_Limited, throttling.UserRateThrottle):
    """Authenticated callers, per user: API_THROTTLE_USER_RATE (staff are exempt)."""

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_USER_RATE

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        user = request.user
        if not (user and user.is_authenticated):
            return None
        # Token user 3 and local account 3 are different people.
        kind = "local" if isinstance(user, AbstractBaseUser) else "token"
        return self.cache_format % {"scope": self.scope, "ident": f"{kind}-{user.pk}"}
