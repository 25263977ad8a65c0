"""Who is calling: JWTs issued by the ecosystem's auth service, verified without a local user row.

The ecosystem's users live in the auth service. A token signed with the shared
key (HS256, `JWT_SIGNING_KEY`) is the caller's identity: its `user_id` claim is
the id that task assignments name as `userID`, and `is_staff: true` marks an
administrator. Django session login (admin, browsable API) keeps working
alongside, for local staff accounts.
"""

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from workflow_api import permissions

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
ACCESS_TOKEN_COOKIE = "access_token"  # noqa: S105  (a cookie name)
# The claim that marks an administrator; its value must be the JSON boolean true.
STAFF_CLAIM = "is_staff"
USER_ID_CLAIM = "user_id"
# Ids are PostgreSQL bigints. Some auth services write them as strings: only
# ASCII digits without a leading zero count, so that "３", "٣" or "0003" cannot
# pass as user 3.
MAX_USER_ID = 2**63 - 1
_USER_ID_STRING = re.compile(r"[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class TokenUser:
    """The caller a valid token describes; never stored, never looked up."""

    user_id: int
    is_staff: bool = False

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False

    @property
    def pk(self) -> int:
        return self.user_id

    @property
    def id(self) -> int:
        return self.user_id

    @property
    def username(self) -> str:
        return f"user-{self.user_id}"

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        # Django model permissions belong to local accounts; token users are
        # authorized by the API's own permission classes instead.
        return False


def mint_token(
    *,
    user_id: int,
    is_staff: bool = False,
    lifetime: timedelta = timedelta(hours=1),
    extra_claims: dict | None = None,
) -> str:
    """A token this service accepts, signed with JWT_SIGNING_KEY: for development, tests and the demo."""
    if not settings.JWT_SIGNING_KEY:
        raise RuntimeError("JWT_SIGNING_KEY is not set; no token can be minted.")
    now = datetime.now(UTC)
    claims: dict = {USER_ID_CLAIM: user_id, "iat": now, "exp": now + lifetime, **(extra_claims or {})}
    if is_staff:
        claims[STAFF_CLAIM] = True
    if settings.JWT_ISSUER:
        claims.setdefault("iss", settings.JWT_ISSUER)
    if settings.JWT_AUDIENCE:
        claims.setdefault("aud", settings.JWT_AUDIENCE)
    return jwt.encode(claims, settings.JWT_SIGNING_KEY, algorithm=ALGORITHM)


def _decode(token: str) -> dict:
    if not settings.JWT_SIGNING_KEY:
        # No key configured: no token can be trusted (check --deploy reports it).
        raise exceptions.AuthenticationFailed("Token authentication is not configured.")
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[ALGORITHM],
            audience=settings.JWT_AUDIENCE or None,
            issuer=settings.JWT_ISSUER or None,
            leeway=settings.JWT_LEEWAY_SECONDS,
            options={
                "require": ["exp", USER_ID_CLAIM],
                # Only checked when configured: tokens of other deployments may carry them.
                "verify_aud": bool(settings.JWT_AUDIENCE),
                "verify_iss": bool(settings.JWT_ISSUER),
            },
        )
    except jwt.ExpiredSignatureError as exc:
        raise exceptions.AuthenticationFailed("Token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        # The reason, never the token: logs must not carry credentials.
        logger.info("Rejected token: %s", type(exc).__name__)
        raise exceptions.AuthenticationFailed("Invalid token.") from exc
    # Auth services that issue refresh tokens mark them with token_type; a
    # refresh token is long-lived and is not a caller's credential here.
    if claims.get("token_type", "access") != "access":
        logger.info("Rejected token: token_type %r", claims.get("token_type"))
        raise exceptions.AuthenticationFailed("Invalid token.")
    _check_lifetime(claims)
    return claims


def _check_lifetime(claims: dict) -> None:
    """Refuse tokens valid for longer than JWT_MAX_LIFETIME_SECONDS: from iat, or from now without one."""
    try:
        # Read as PyJWT read them when it checked exp (future) and iat (not in the future).
        exp = int(claims["exp"])
        start = int(claims["iat"]) if claims.get("iat") is not None else time.time()
    except (TypeError, ValueError, OverflowError) as exc:
        raise exceptions.AuthenticationFailed("Invalid token.") from exc
    if exp - start > settings.JWT_MAX_LIFETIME_SECONDS:
        logger.info("Rejected token: lifetime above JWT_MAX_LIFETIME_SECONDS")
        raise exceptions.AuthenticationFailed("Invalid token.")


def parse_user_id(value: object) -> int | None:
    """The user id a `user_id` claim names: a JSON integer, or a string of ASCII digits, 1..2^63-1."""
    if isinstance(value, str):
        if not _USER_ID_STRING.fullmatch(value):
            return None
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= MAX_USER_ID else None


def _user_from_claims(claims: dict) -> TokenUser:
    user_id = parse_user_id(claims.get(USER_ID_CLAIM))
    if user_id is None:
        logger.info("Rejected token: user_id is not an id")
        raise exceptions.AuthenticationFailed("Invalid token.")
    return TokenUser(user_id=user_id, is_staff=claims.get(STAFF_CLAIM) is True)


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication; a local staff account's rights follow its Django model permissions.

    The view is known here (DRF passes it in the parser context), so the
    permission this request needs is checked once, and `permissions.is_staff`
    reads the outcome.
    """

    def authenticate(self, request: Request) -> tuple[object, None] | None:
        result = super().authenticate(request)
        if result is not None:
            user = result[0]
            view = (getattr(request, "parser_context", None) or {}).get("view")
            setattr(
                user,
                permissions.API_STAFF_RIGHTS,
                permissions.local_account_staff_rights(user, request, view),
            )
        return result


class JWTAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`, or the `access_token` cookie the frontend sets.

    A cookie is sent by the browser on its own, so a token read from it gets the
    same CSRF protection as a session: unsafe methods need Django's CSRF token.
    """

    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[TokenUser, str] | None:
        header = authentication.get_authorization_header(request).split()
        if header and header[0].lower() == b"bearer":
            if len(header) != 2:
                raise exceptions.AuthenticationFailed(
                    "Invalid Authorization header: expected 'Bearer <token>'."
                )
            try:
                token = header[1].decode("ascii")
            except UnicodeDecodeError as exc:
                raise exceptions.AuthenticationFailed("Invalid token.") from exc
            return _user_from_claims(_decode(token)), token
        token = request.COOKIES.get(ACCESS_TOKEN_COOKIE)
        if not token:
            return None
        user = _user_from_claims(_decode(token))
        self._enforce_csrf(request)
        return user, token

    def _enforce_csrf(self, request: Request) -> None:
        check = authentication.CSRFCheck(lambda request: None)
        check.process_request(request)
        reason = check.process_view(request, None, (), {})
        if reason:
            raise exceptions.PermissionDenied(f"CSRF Failed: {reason}")

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return f'Bearer realm="{self.www_authenticate_realm}"'
