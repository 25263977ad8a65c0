"""The service's settings plus the benchmark's floor view; loaded only by the benchmark's gunicorn."""

from workflow_api.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
