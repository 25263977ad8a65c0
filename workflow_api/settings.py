"""Settings for workflow_api, read from the environment (see .env.example).

With no environment at all the service runs locally: SQLite, Celery tasks
executed in-process, DEBUG on. Production sets DJANGO_DEBUG=false and supplies
the secrets, which then have no default.
"""

import os
import re
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=True)

if DEBUG:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-local-development-key-do-not-deploy")
else:
    try:
        SECRET_KEY = env.str("DJANGO_SECRET_KEY")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.") from exc
    if not SECRET_KEY.strip():
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must not be empty when DJANGO_DEBUG is off.")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Login lockout for /admin/login/ and /api-auth/login/ (see "Login lockout" below).
    "axes",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # The project package: the mint_dev_token command and the API's system checks.
    "workflow_api",
    "workflow",
    "tickets",
    "task",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and the API docs' static files under gunicorn (after collectstatic).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Cache-Control, Vary and the Content-Security-Policy of every dynamic
    # response; outside the rest so that early refusals (413) carry them too.
    "workflow_api.middleware.ResponseHeadersMiddleware",
    # CORS first, so that even a refused request (413) carries its CORS headers
    # and the browser shows the frontend the real status.
    "corsheaders.middleware.CorsMiddleware",
    "workflow_api.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "workflow_api.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "workflow_api.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Reuse connections between requests and tasks; a fresh connection per ticket
# costs more than the ticket itself.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PostgreSQL plans a statement every time it is sent unless it is prepared: the
# pipeline's two statements per ticket cost more to plan than to run. With
# server-side binding, psycopg prepares a statement on a connection once it
# has run DATABASE_PREPARE_THRESHOLD times. 0 turns this off (for a
# transaction-mode pooler that cannot keep prepared statements).
DATABASE_PREPARE_THRESHOLD = env.int("DATABASE_PREPARE_THRESHOLD", default=5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_PREPARE_THRESHOLD > 0:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": DATABASE_PREPARE_THRESHOLD}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "workflow_api.api.exception_handler",
    # JSON that nests too deep or holds lone surrogates is a 400, not a 500.
    "DEFAULT_PARSER_CLASSES": [
        "workflow_api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "workflow_api.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # Rates and exemptions: API_THROTTLE_* below.
    "DEFAULT_THROTTLE_CLASSES": [
        "workflow_api.throttling.AnonRateThrottle",
        "workflow_api.throttling.UserRateThrottle",
    ],
    "DEFAULT_FILTER_BACKENDS": ["workflow_api.filters.FilterBackend"],
    # JWT first: its WWW-Authenticate header makes anonymous requests answer 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "workflow_api.authentication.JWTAuthentication",
        # DRF's, with a local staff account's rights following its Django model permissions.
        "workflow_api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "workflow_api.pagination.DefaultPagination",
    "DEFAULT_SCHEMA_CLASS": "workflow_api.schema.AutoSchema",
}

# --- API: authentication, limits, documentation -------------------------------
# Tokens come from the ecosystem's auth service, signed with this shared HS256
# key. Locally a fixed development key lets `manage.py mint_dev_token` work;
# in production there is no default, and without a key every token is refused.
JWT_SIGNING_KEY = env.str(
    "JWT_SIGNING_KEY",
    default="insecure-local-development-jwt-key-do-not-deploy" if DEBUG else "",
)
JWT_ISSUER = env.str("JWT_ISSUER", default="")
JWT_AUDIENCE = env.str("JWT_AUDIENCE", default="")
# Bearer token a Prometheus scraper sends to /metrics; unset: only staff sessions may read it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Seconds between a process adding its metric counts to the database (0: only at exit and when scraped).
METRICS_FLUSH_SECONDS = env.float("METRICS_FLUSH_SECONDS", default=10.0)
# Tolerated clock difference with the auth service when checking exp/iat.
JWT_LEEWAY_SECONDS = env.int("JWT_LEEWAY_SECONDS", default=30)
# Longest validity accepted: exp - iat, or exp - now for a token without iat.
JWT_MAX_LIFETIME_SECONDS = env.int("JWT_MAX_LIFETIME_SECONDS", default=86400)
if JWT_MAX_LIFETIME_SECONDS < 1:
    raise ImproperlyConfigured("JWT_MAX_LIFETIME_SECONDS must be at least 1.")

# Deepest nesting of a JSON request body (API bodies nest two or three levels).
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
if API_MAX_JSON_DEPTH < 2:
    raise ImproperlyConfigured("API_MAX_JSON_DEPTH must be at least 2.")

# Shared cache of the API's throttle counters: Redis in production (every
# gunicorn worker and machine must count together), e.g. redis://redis:6379/1;
# process memory when unset.
CACHES = {"default": env.cache("DJANGO_CACHE_URL", default="locmemcache://")}

# Proxies in front of the service that append the client's address to
# X-Forwarded-For (compose: nginx, 1). 0 trusts REMOTE_ADDR only: with a proxy
# in front and 0 here, every client would share the proxy's address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")

_RATE = re.compile(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)")


def _throttle_rate(name: str, default: str) -> str | None:
    rate = env.str(name, default=default).strip()
    if rate.lower() in ("", "none"):
        return None
    if not _RATE.fullmatch(rate):
        raise ImproperlyConfigured(f"{name} must look like 60/minute (or be 'none'), not {rate!r}.")
    return rate


# Requests per address from callers without valid credentials (401s count),
# and per authenticated non-staff caller. Over it: 429 with Retry-After.
API_THROTTLE_ANON_RATE = _throttle_rate("API_THROTTLE_ANON_RATE", "60/minute")
API_THROTTLE_USER_RATE = _throttle_rate("API_THROTTLE_USER_RATE", "1000/minute")
# Callers never throttled: dotted paths to `(request) -> bool`. Add a check
# here for another trusted caller (a metrics scraper's token, say).
API_THROTTLE_EXEMPT = ["workflow_api.throttling.caller_is_staff"]

API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=50)
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=200)
# Task and ticket lists: `count` is exact up to this many results, an estimate
# above; `?page=` reaches this many results, `next` links go further.
API_EXACT_COUNT_LIMIT = env.int("API_EXACT_COUNT_LIMIT", default=10_000)
API_MAX_OFFSET_ROWS = env.int("API_MAX_OFFSET_ROWS", default=10_000)

# Request bodies here are small JSON documents; anything bigger is refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

# Browser origins (the frontend) allowed to call the API; none by default.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
# Needed when the frontend authenticates with the access_token cookie.
CORS_ALLOW_CREDENTIALS = env.bool("CORS_ALLOW_CREDENTIALS", default=False)
CORS_URLS_REGEX = r"^/(tasks|tickets|workflow)/api/.*$"
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

SPECTACULAR_SETTINGS = {
    "TITLE": "workflow_api",
    "DESCRIPTION": "Workflows, tickets and the tasks created for them. Every operation needs a caller: "
    "`Authorization: Bearer <JWT>` (Authorize, bearerAuth; locally "
    "`.venv/bin/python manage.py mint_dev_token --user-id 3 [--admin]` prints one), the `access_token` "
    "cookie, or a Django admin session. Lists are pages: `{count, next, previous, results}`.",
    "VERSION": "1.0.0",
    # The API's shape is no secret, and every operation in it still needs a token:
    # a frontend developer holding only a JWT opens the docs and authorizes there.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # No authentication on these two views: a stale cookie or token cannot turn them into a 401.
    "SERVE_AUTHENTICATION": [],
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the service's own static files: no CDN needed to read the docs.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No validator badge: it would send the schema's URL to swagger.io (and the CSP refuses it).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "workflow_api.schema.describe_fields",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "task.models.Task.Status",
        "UserStatusEnum": "task.models.Task.UserStatus",
        "WorkflowStatusEnum": "workflow.models.Workflows.Status",
        "AvailabilityStatusEnum": "task.models.UserAvailability.Status",
        "AssignmentStrategyEnum": "workflow.models.Steps.AssignmentStrategy",
    },
}

# --- HTTPS hardening (production defaults; `check --deploy` verifies them) ---
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
# Health probes come over plain HTTP from inside the deployment network.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    # Only behind a proxy that sets this header itself; otherwise clients could forge it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Where /api-auth/login/ (and admin's login, without ?next=) lands: the API docs.
LOGIN_REDIRECT_URL = "/api/docs/"

# --- Login lockout (django-axes) on /admin/login/ and /api-auth/login/ --------
# LOGIN_FAILURE_LIMIT failures for one username from one address lock that
# pair out for LOGIN_LOCKOUT_MINUTES, the right password included (429).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "workflow_api.throttling.client_ip"
# A successful login clears the pair's failures.
AXES_RESET_ON_SUCCESS = True
if AXES_FAILURE_LIMIT < 1 or timedelta(0) >= AXES_COOLOFF_TIME:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and LOGIN_LOCKOUT_MINUTES must be at least 1.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    # Django's own loggers go through the root handler only (no duplicate lines).
    "loggers": {"django": {"handlers": [], "propagate": True}},
}

# --- Identity / TTS service -------------------------------------------------
TTS_SERVICE_URL = env.str("TTS_SERVICE_URL", default="http://localhost:8002").rstrip("/")
TTS_CONNECT_TIMEOUT = env.float("TTS_CONNECT_TIMEOUT", default=2.0)
TTS_READ_TIMEOUT = env.float("TTS_READ_TIMEOUT", default=5.0)
# A role with more users than this is a broken response, not a real role.
TTS_MAX_USERS = env.int("TTS_MAX_USERS", default=1000)

# --- Allocation -------------------------------------------------------------
# How many users the round-robin assigns to one step.
ROUND_ROBIN_MAX_ASSIGNMENTS = env.int("ROUND_ROBIN_MAX_ASSIGNMENTS", default=3)
# Celery retries of one create_task_for_ticket message when TTS is unreachable.
ALLOCATION_MAX_RETRIES = env.int("ALLOCATION_MAX_RETRIES", default=5)
ALLOCATION_RETRY_BACKOFF_MAX = env.int("ALLOCATION_RETRY_BACKOFF_MAX", default=300)
# Allocation attempts per ticket (each try at allocating, its Celery retries
# included; counted once the ticket is stored) after which the ticket is given
# up on, with the reason recorded; bounds a message that fails, or kills its
# worker, every time.
ALLOCATION_MAX_ATTEMPTS = env.int("ALLOCATION_MAX_ATTEMPTS", default=10)
# Redeliveries of one receive_ticket message (its worker died or hung) before it is dropped.
TICKET_MESSAGE_MAX_REDELIVERIES = env.int("TICKET_MESSAGE_MAX_REDELIVERIES", default=5)
if ROUND_ROBIN_MAX_ASSIGNMENTS < 1:
    raise ImproperlyConfigured("ROUND_ROBIN_MAX_ASSIGNMENTS must be at least 1.")
# A new ticket's first delivery stores nothing before TTS answers: if it dies
# there, the ticket is stored by the first redelivery, which must be allowed.
if TICKET_MESSAGE_MAX_REDELIVERIES < 2:
    raise ImproperlyConfigured("TICKET_MESSAGE_MAX_REDELIVERIES must be at least 2.")
# The sweeper retries a ticket only once nothing happened to it for this long:
# its message was lost, or its last attempt failed transiently. Longer than the
# longest retry delay, so a message still waiting to retry is not doubled.
ALLOCATION_STALE_SECONDS = env.int("ALLOCATION_STALE_SECONDS", default=600)
ALLOCATION_SWEEP_INTERVAL = env.float("ALLOCATION_SWEEP_INTERVAL", default=300.0)
# How often (seconds) beat runs the check for overdue steps (task.tasks.escalate_overdue_tasks).
SLA_CHECK_INTERVAL = env.int("SLA_CHECK_INTERVAL", default=60)
if SLA_CHECK_INTERVAL < 1:
    raise ImproperlyConfigured("SLA_CHECK_INTERVAL must be at least 1 (seconds).")
# Overdue tasks escalated per run at most; the rest wait for the next run.
SLA_CHECK_BATCH = 200

# --- Intake limits (README: "Security: ticket intake limits") ----------------
# Checked by the worker's main process while it decodes any message to any of
# the service's tasks (workflow_api/intake.py), before Celery builds a request,
# and again by ticket validation (also for tasks run in-process). A real
# ticket nests 3 or 4 levels; a few hundred crash Celery's pickling for the pool.
MESSAGE_MAX_DEPTH = env.int("MESSAGE_MAX_DEPTH", default=32)
# Largest message body the worker decodes, and largest ticket (as JSON), in bytes.
MESSAGE_MAX_BYTES = env.int("MESSAGE_MAX_BYTES", default=1024 * 1024)
# Largest text value anywhere in a ticket (e.g. its description), in UTF-8 bytes.
TICKET_TEXT_MAX_BYTES = env.int("TICKET_TEXT_MAX_BYTES", default=64 * 1024)
if not 4 <= MESSAGE_MAX_DEPTH <= 200:
    raise ImproperlyConfigured(
        "MESSAGE_MAX_DEPTH must be between 4 (a real ticket's nesting) and 200 "
        "(deeper bodies can crash the worker's main process)."
    )
if MESSAGE_MAX_BYTES < 64 * 1024:
    raise ImproperlyConfigured("MESSAGE_MAX_BYTES must be at least 65536: smaller refuses ordinary messages.")
if not 1024 <= TICKET_TEXT_MAX_BYTES <= MESSAGE_MAX_BYTES:
    raise ImproperlyConfigured("TICKET_TEXT_MAX_BYTES must be at least 1024 and at most MESSAGE_MAX_BYTES.")

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = env.str("DJANGO_CELERY_BROKER_URL", default="")
# Without a broker, tasks run in-process: the local demo needs no Redis.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://localhost/"
# In-process execution behaves like a worker: retries happen, failures are results.
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TIMEZONE = TIME_ZONE

# --- Celery reliability: at-least-once delivery (README: "Worker settings") --
# Acknowledge a message only after its task ran, so a worker that dies mid-task
# leaves the message to be delivered again; every task is idempotent.
CELERY_TASK_ACKS_LATE = True
# A pool process killed mid-task (OOM killer, SIGKILL) requeues its message
# instead of dropping it as failed.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Reserve one message per pool process: a dying worker strands at most that
# many, and a slow ticket never holds others hostage.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its CPU affinity, capped by a container's CPU quota (cgroup v2 or v1)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota_files = (
        (cgroup / "cpu.max", None),
        (cgroup / "cpu" / "cpu.cfs_quota_us", cgroup / "cpu" / "cpu.cfs_period_us"),
    )
    for quota_path, period_path in quota_files:
        try:
            with open(quota_path) as file:
                fields = file.read().split()
            if period_path is not None:
                with open(period_path) as file:
                    fields.append(file.read().strip())
            quota, period = int(fields[0]), int(fields[1])
        except (OSError, ValueError, IndexError):
            continue  # no such cgroup file, or "max": no quota
        if quota > 0 and period > 0:
            return max(1, min(cpus, -(-quota // period)))
    return cpus


# Pool processes per worker: one more than the CPUs the worker may use. A new
# ticket waits on TTS and PostgreSQL for about half of its time in a pool
# process, so with one process per CPU the CPUs idle during those waits (README:
# "Performance"). Empty means the default. `celery worker --concurrency` still
# overrides it.
_concurrency = env.str("CELERY_WORKER_CONCURRENCY", default="").strip()
if not _concurrency:
    CELERY_WORKER_CONCURRENCY = available_cpus() + 1
elif _concurrency.isdecimal() and int(_concurrency) >= 1:
    CELERY_WORKER_CONCURRENCY = int(_concurrency)
else:
    raise ImproperlyConfigured(
        f"CELERY_WORKER_CONCURRENCY must be a whole number, at least 1, not {_concurrency!r}."
    )
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
# Redis redelivers a message not acknowledged within this many seconds. It must
# outlast the longest retry countdown plus a task's run (a retried message
# waits unacknowledged in a worker until its countdown ends), or healthy
# messages are delivered twice.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Look for expired unacknowledged messages every 10 seconds rather than
    # kombu's default of every 100.
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 5,
}
# Celery's Django fix-up closes the database connection around every task
# unless this is set; a new PostgreSQL connection per task costs more than the
# ticket. workflow_api/celery.py applies CONN_MAX_AGE and health checks instead.
CELERY_DB_REUSE_MAX = 1000
# Reconnect to a restarting broker forever instead of exiting after 100 tries.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Let a running task finish when the broker connection drops: its database
# work is kept, and an idempotent redelivery of it is harmless.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT.")
if CELERY_VISIBILITY_TIMEOUT <= ALLOCATION_RETRY_BACKOFF_MAX + CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must exceed ALLOCATION_RETRY_BACKOFF_MAX + CELERY_TASK_TIME_LIMIT "
        "(the longest retry countdown plus a task's run), or messages are delivered twice."
    )

TICKET_TASKS_QUEUE = env.str("TICKET_TASKS_QUEUE", default="TICKET_TASKS_PRODUCTION")
WORKFLOW_TASKS_QUEUE = env.str("WORKFLOW_TASKS_QUEUE", default="workflow_api")
NOTIFICATION_TASKS_QUEUE = env.str("NOTIFICATION_TASKS_QUEUE", default="NOTIFICATION_TASKS")
NOTIFICATION_TASK_NAME = env.str("NOTIFICATION_TASK_NAME", default="notifications.tasks.task_completed")

# A plain `celery -A workflow_api worker` consumes every queue listed here.
# The notification queue is not among them: another service consumes it.
CELERY_TASK_QUEUES = (
    Queue(WORKFLOW_TASKS_QUEUE),
    Queue(TICKET_TASKS_QUEUE),
)
CELERY_TASK_DEFAULT_QUEUE = WORKFLOW_TASKS_QUEUE
CELERY_TASK_ROUTES = {
    "tickets.tasks.receive_ticket": {"queue": TICKET_TASKS_QUEUE},
}

CELERY_BEAT_SCHEDULE = {
    "allocate-pending-tickets": {
        "task": "tickets.tasks.allocate_pending_tickets",
        "schedule": ALLOCATION_SWEEP_INTERVAL,
    },
    "escalate-overdue-tasks": {
        "task": "task.tasks.escalate_overdue_tasks",
        "schedule": SLA_CHECK_INTERVAL,
        # A check not run by the time the next is due is superseded by it: no backlog while workers are down.
        "options": {"expires": SLA_CHECK_INTERVAL},
    },
}
