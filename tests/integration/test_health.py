"""GET /health/ under gunicorn: 200 when PostgreSQL and Redis answer, 503 naming the one that does not."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from tests.integration.conftest import REPO, free_port, wait_until, worker_database_url

pytestmark = pytest.mark.integration


def _get_health(port: int) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except (urllib.error.URLError, ConnectionError):
        return None  # not listening yet


def _health_under_gunicorn(tmp_path, **env: str) -> tuple[int, dict]:
    port = free_port()
    log = (tmp_path / f"gunicorn-{port}.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "workflow_api.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            "--workers=1",
        ],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "workflow_api.settings", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        return wait_until(lambda: _get_health(port), timeout=30, what="gunicorn to answer")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


def test_health_is_200_when_database_and_broker_answer(transactional_db, tmp_path):
    status, body = _health_under_gunicorn(
        tmp_path, DATABASE_URL=worker_database_url(), DJANGO_CELERY_BROKER_URL=settings.CELERY_BROKER_URL
    )

    assert (status, body) == (200, {"status": "ok", "database": "ok", "broker": "ok"})


def test_health_is_503_naming_the_broker_when_redis_is_unreachable(transactional_db, tmp_path):
    status, body = _health_under_gunicorn(
        tmp_path,
        DATABASE_URL=worker_database_url(),
        DJANGO_CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
    )

    assert (status, body) == (503, {"status": "unavailable", "database": "ok", "broker": "unavailable"})


def test_health_is_503_naming_the_database_when_postgresql_is_unreachable(tmp_path):
    status, body = _health_under_gunicorn(
        tmp_path,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",
        DJANGO_CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
    )

    assert (status, body) == (503, {"status": "unavailable", "database": "unavailable", "broker": "ok"})


def test_health_answers_plain_http_probes_in_production_mode(transactional_db, tmp_path):
    status, body = _health_under_gunicorn(
        tmp_path,
        DATABASE_URL=worker_database_url(),
        DJANGO_CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="a-production-secret-for-this-test-only-0123456789",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
    )

    assert (status, body["status"]) == (200, "ok")  # not a redirect to HTTPS
