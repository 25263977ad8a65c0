"""Settings for workflow_api, read from the environment (see .env.example).

With no environment at all the service runs locally: SQLite, Celery tasks
executed in-process, DEBUG on. Production sets DJANGO_DEBUG=false and supplies
the secrets, which then have no default.
"""

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

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "workflow",
    "tickets",
    "task",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "workflow_api.api.exception_handler",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}

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
# Failed allocation runs after which the sweeper stops trying a ticket.
ALLOCATION_MAX_ATTEMPTS = env.int("ALLOCATION_MAX_ATTEMPTS", default=10)
# An unallocated ticket with no recorded attempt older than this is considered
# lost (its message never ran) and is picked up by the sweeper.
ALLOCATION_STALE_SECONDS = env.int("ALLOCATION_STALE_SECONDS", default=300)
ALLOCATION_SWEEP_INTERVAL = env.float("ALLOCATION_SWEEP_INTERVAL", default=300.0)

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = env.str("DJANGO_CELERY_BROKER_URL", default="")
# Without a broker, tasks run in-process: the local demo needs no Redis.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TIMEZONE = TIME_ZONE

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
}
