"""GET (or HEAD) /health/: can this process reach its database and its Celery broker? 200 if both, else 503.

A plain Django view, outside DRF: load balancers and container health checks
call it without credentials.
"""

import logging

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from kombu import Connection
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

# A probe has to answer before the prober gives up on it, broker down or not.
BROKER_TIMEOUT_SECONDS = 2.0

OK = "ok"
UNAVAILABLE = "unavailable"


def database_reachable() -> bool:
    """One round trip to the default database."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("Health check: database unreachable: %s", exc)
        return False
    return True


def broker_reachable() -> bool:
    """A fresh connection to the broker the workers consume from; no retries."""
    connection = Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=BROKER_TIMEOUT_SECONDS,
        transport_options={"socket_timeout": BROKER_TIMEOUT_SECONDS},
    )
    try:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS
        )
    except (BrokerError, OSError, *connection.connection_errors) as exc:
        logger.warning("Health check: broker unreachable: %s", exc)
        return False
    finally:
        connection.release()
    return True


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": OK if database_reachable() else UNAVAILABLE,
        "broker": OK if broker_reachable() else UNAVAILABLE,
    }
    healthy = all(state == OK for state in checks.values())
    return JsonResponse({"status": OK if healthy else UNAVAILABLE, **checks}, status=200 if healthy else 503)
