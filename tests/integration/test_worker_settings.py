"""The settings a running worker uses for at-least-once delivery, and the checks that guard them."""

import os
import socket
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import pytest

from tests.integration.conftest import REPO
from workflow_api.celery import app as celery_app


@pytest.mark.integration
def test_a_running_worker_acks_late_requeues_lost_work_prefetches_one_and_takes_json_only(cluster):
    cluster.start("inspected", concurrency=2, CELERY_VISIBILITY_TIMEOUT=777)
    hostname = f"inspected@{socket.gethostname()}"
    inspect = celery_app.control.inspect(destination=[hostname], timeout=5)

    conf = inspect.conf(with_defaults=True)[hostname]
    stats = inspect.stats()[hostname]
    queues = {queue["name"] for queue in inspect.active_queues()[hostname]}

    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert stats["prefetch_count"] == 2  # one message per pool process
    assert conf["broker_transport_options"]["visibility_timeout"] == 777
    assert 0 < conf["task_soft_time_limit"] < conf["task_time_limit"]
    assert conf["accept_content"] == ["json"]
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert queues == {cluster.broker.ticket_queue, cluster.broker.workflow_queue}


def _load_settings(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "workflow_api.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_visibility_timeout_shorter_than_a_retry_delay_plus_a_run_is_refused_at_startup():
    refused = _load_settings(
        CELERY_VISIBILITY_TIMEOUT="300", ALLOCATION_RETRY_BACKOFF_MAX="300", CELERY_TASK_TIME_LIMIT="90"
    )
    accepted = _load_settings(
        CELERY_VISIBILITY_TIMEOUT="391", ALLOCATION_RETRY_BACKOFF_MAX="300", CELERY_TASK_TIME_LIMIT="90"
    )

    assert refused.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT must exceed" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr


def test_a_soft_time_limit_not_below_the_hard_one_is_refused_at_startup():
    refused = _load_settings(CELERY_TASK_SOFT_TIME_LIMIT="90", CELERY_TASK_TIME_LIMIT="90")

    assert refused.returncode != 0
    assert "CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT" in refused.stderr


@pytest.mark.parametrize(
    ("variable", "lowest", "refused_value"),
    [("ROUND_ROBIN_MAX_ASSIGNMENTS", "1", "0"), ("TICKET_MESSAGE_MAX_REDELIVERIES", "2", "1")],
)
def test_allocation_bounds_below_their_minimum_are_refused_at_startup(variable, lowest, refused_value):
    refused = _load_settings(**{variable: refused_value})
    accepted = _load_settings(**{variable: lowest})

    assert refused.returncode != 0
    assert f"{variable} must be at least {lowest}" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr


@pytest.mark.parametrize(
    ("variable", "unreachable"),
    [
        ("DJANGO_CELERY_BROKER_URL", "redis://127.0.0.1:1/0"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/test"),
    ],
)
def test_with_require_services_an_unreachable_service_fails_the_run_instead_of_skipping(
    tmp_path, variable, unreachable
):
    database = urlsplit(os.environ.get("DATABASE_URL", ""))
    if not database.scheme.startswith("postgres"):
        database = urlsplit("postgres://postgres@127.0.0.1:5432/")
    env = {
        **os.environ,
        # A database of its own: the inner run must not touch the test database of a concurrent run.
        "DATABASE_URL": database._replace(path=f"/require_{uuid.uuid4().hex[:8]}").geturl(),
        "DJANGO_CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "REQUIRE_SERVICES": "1",
        variable: unreachable,
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'inner'}",
            "tests/integration/test_concurrent_updates.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode != 0
    # Ours ("... unreachable") or pytest-django's, whichever setup meets the dead service first.
    assert "unreachable" in run.stdout or "Connection refused" in run.stdout
    assert " skipped" not in run.stdout
    assert " passed" not in run.stdout
