"""Client for the TTS/identity service's round-robin endpoint."""

import logging
import threading
import time

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from workflow_api import metrics
from workflow_api.errors import DependencyUnavailable

logger = logging.getLogger(__name__)

ROUND_ROBIN_PATH = "/api/v1/tts/round-robin/"
MAX_USER_ID = 2**63 - 1  # stored in bigint columns and arrays

_local = threading.local()


class TTSUnavailable(DependencyUnavailable):
    """TTS could not be reached or answered 5xx: worth retrying later."""

    code = "tts_unavailable"


class TTSBadResponse(DependencyUnavailable):
    """TTS answered, but not with a list of user ids: retrying will not help."""

    code = "tts_bad_response"


def _session() -> requests.Session:
    # One pooled session per thread: keeps the TCP connection to TTS alive
    # across tickets without sharing a Session between threads.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        # Resolve proxy settings from the environment once, not per call:
        # with trust_env on, requests re-reads them and ~/.netrc on every
        # request, which costs more than the call to TTS itself.
        session.proxies.update(requests.utils.get_environ_proxies(settings.TTS_SERVICE_URL))
        session.trust_env = False
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


def _parse_user_ids(body: object, role_name: str) -> list[int]:
    if not isinstance(body, list):
        raise TTSBadResponse(f"expected a list of user ids for role {role_name!r}, got {type(body).__name__}")
    if len(body) > settings.TTS_MAX_USERS:
        raise TTSBadResponse(
            f"role {role_name!r}: {len(body)} user ids exceeds the limit of {settings.TTS_MAX_USERS}"
        )
    for item in body:
        # bool is an int subclass; True is not a user id.
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item <= MAX_USER_ID:
            raise TTSBadResponse(f"role {role_name!r}: {item!r} is not a user id")
    # Keep TTS's order (it defines the rotation) but drop repeats.
    return list(dict.fromkeys(body))


def _round_robin_request(role_name: str) -> requests.PreparedRequest:
    # Built once per role and thread: preparing a request (URL parsing and
    # quoting, header merging) costs as much as the call to TTS itself.
    prepared = getattr(_local, "prepared", None)
    if prepared is None or len(prepared) > 256:
        prepared = _local.prepared = {}
    key = (settings.TTS_SERVICE_URL, role_name)
    if key not in prepared:
        request = requests.Request(
            "GET",
            f"{settings.TTS_SERVICE_URL}{ROUND_ROBIN_PATH}",
            params={"role_name": role_name},
            headers={"Accept": "application/json"},
        )
        prepared[key] = _session().prepare_request(request)
    return prepared[key].copy()


def get_role_user_ids(role_name: str, *, timeout: float | None = None) -> list[int]:
    """User ids TTS lists for a role; raises TTSUnavailable (retryable) or TTSBadResponse (final).

    `timeout` (seconds, for connecting and for reading) replaces the configured ones,
    for callers that would rather not know than wait, such as an admin page.
    Counted in the metrics by outcome, with its time (in memory only).
    """
    started = time.perf_counter()
    outcome = "ok"
    try:
        return _ask_for_role(role_name, timeout=timeout)
    except TTSBadResponse:
        outcome = "bad_response"
        raise
    except TTSUnavailable:
        outcome = "unavailable"
        raise
    finally:
        metrics.count("tts_requests_total", outcome=outcome)
        metrics.observe("tts_request_seconds", time.perf_counter() - started)


def _ask_for_role(role_name: str, *, timeout: float | None) -> list[int]:
    request = _round_robin_request(role_name)
    session = _session()
    try:
        # Straight to the pooled connection: no redirects, cookies or hooks to handle.
        response = session.get_adapter(request.url).send(
            request,
            timeout=(timeout, timeout)
            if timeout is not None
            else (settings.TTS_CONNECT_TIMEOUT, settings.TTS_READ_TIMEOUT),
            proxies=session.proxies,
        )
        # The adapter leaves the body unread: read it here, where a connection
        # lost mid-body is TTS being unavailable, and the connection goes back to the pool.
        response.content  # noqa: B018
    except requests.RequestException as exc:
        raise TTSUnavailable(f"TTS unreachable for role {role_name!r}: {exc.__class__.__name__}") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise TTSUnavailable(f"TTS answered {response.status_code} for role {role_name!r}")
    if response.status_code != 200:
        raise TTSBadResponse(f"TTS answered {response.status_code} for role {role_name!r}")
    try:
        body = response.json()
    except ValueError as exc:
        raise TTSBadResponse(f"TTS answered non-JSON for role {role_name!r}") from exc
    return _parse_user_ids(body, role_name)


def fetch_users_for_role(role_name: str) -> list[int]:
    """The spec's helper: the role's user ids, or an empty list (error logged) when TTS fails."""
    try:
        return get_role_user_ids(role_name)
    except DependencyUnavailable as exc:
        logger.error("fetch_users_for_role failed: %s", exc.message)
        return []
