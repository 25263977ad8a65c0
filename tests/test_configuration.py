"""How the service is wired: Celery task names, queues, and settings from the environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from workflow_api.celery import app as celery_app
from workflow_api.settings import available_cpus

BASE_DIR = Path(__file__).resolve().parent.parent

SETTINGS_PROBE = """
import json, django
django.setup()
import pytest
from django.conf import settings
from workflow_api.celery import app
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "debug": settings.DEBUG,
    "eager": app.conf.task_always_eager,
    "broker": app.conf.broker_url,
    "tts": settings.TTS_SERVICE_URL,
    "concurrency": app.conf.worker_concurrency,
}))
"""


def _settings_with_env(env: dict) -> dict:
    base = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "workflow_api.settings"}
    completed = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        cwd=BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_spec_task_names_are_registered():
    celery_app.loader.import_default_modules()

    assert "tickets.tasks.receive_ticket" in celery_app.tasks
    assert "tickets.tasks.create_task_for_ticket" in celery_app.tasks


def test_receive_ticket_is_routed_to_the_producers_queue():
    route = celery_app.amqp.router.route({}, "tickets.tasks.receive_ticket", args=[{}], kwargs={})

    assert route["queue"].name == "TICKET_TASKS_PRODUCTION" == settings.TICKET_TASKS_QUEUE


def test_a_plain_worker_consumes_the_ticket_queue_and_the_service_queue():
    consumed = {queue.name for queue in celery_app.conf.task_queues}
    route = celery_app.amqp.router.route({}, "tickets.tasks.create_task_for_ticket", args=[1], kwargs={})

    assert {"TICKET_TASKS_PRODUCTION", settings.WORKFLOW_TASKS_QUEUE} <= consumed
    assert route["queue"].name in consumed


def test_only_json_is_accepted():
    assert celery_app.conf.accept_content == ["json"]
    assert celery_app.conf.task_serializer == "json"


def test_without_environment_the_service_runs_on_sqlite_with_in_process_tasks():
    probed = _settings_with_env({})

    assert probed["engine"] == "django.db.backends.sqlite3"
    assert probed["eager"] is True
    assert probed["debug"] is True
    assert probed["tts"] == "http://localhost:8002"


def test_database_and_broker_urls_switch_to_postgresql_and_redis():
    probed = _settings_with_env(
        {
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
            "DJANGO_CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
            "TTS_SERVICE_URL": "http://tts.internal:8002/",
        }
    )

    assert probed["engine"] == "django.db.backends.postgresql"
    assert probed["broker"] == "redis://127.0.0.1:6379/0"
    assert probed["eager"] is False
    assert probed["tts"] == "http://tts.internal:8002"


def test_every_environment_variable_the_settings_read_is_documented_in_env_example():
    import re

    source = (BASE_DIR / "workflow_api" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
    documented = set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", (BASE_DIR / ".env.example").read_text(), re.M))

    assert read, "no environment variable found in settings.py"
    assert read - documented == set()


def test_a_worker_runs_one_pool_process_more_than_its_cpus_unless_told():
    cpus = available_cpus()

    assert _settings_with_env({})["concurrency"] == cpus + 1
    # Compose passes the variable on empty when the operator sets nothing.
    assert _settings_with_env({"CELERY_WORKER_CONCURRENCY": ""})["concurrency"] == cpus + 1
    assert _settings_with_env({"CELERY_WORKER_CONCURRENCY": "5"})["concurrency"] == 5


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, None),  # no cgroup files: the affinity alone
        ({"cpu.max": "max 100000\n"}, None),  # cgroup v2 without a quota
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: 2 processes' worth
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1, no quota
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
    ],
)
def test_a_containers_cpu_quota_caps_the_cpus_a_worker_counts(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    affinity = len(os.sched_getaffinity(0))

    assert available_cpus(tmp_path) == (affinity if expected is None else min(affinity, expected))


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("CELERY_WORKER_CONCURRENCY", "0", "CELERY_WORKER_CONCURRENCY must be a whole number, at least 1"),
        ("CELERY_WORKER_CONCURRENCY", "two", "CELERY_WORKER_CONCURRENCY must be a whole number, at least 1"),
        ("MESSAGE_MAX_DEPTH", "2", "MESSAGE_MAX_DEPTH must be between 4"),
        ("MESSAGE_MAX_DEPTH", "600", "MESSAGE_MAX_DEPTH must be between 4"),
        ("MESSAGE_MAX_BYTES", "1000", "MESSAGE_MAX_BYTES must be at least 65536"),
        ("TICKET_TEXT_MAX_BYTES", "0", "TICKET_TEXT_MAX_BYTES must be at least 1024"),
        ("TICKET_TEXT_MAX_BYTES", "2097152", "at most MESSAGE_MAX_BYTES"),
    ],
)
def test_nonsense_intake_limits_stop_the_service_from_starting(variable, value, complaint):
    with pytest.raises(subprocess.CalledProcessError) as failed:
        _settings_with_env({variable: value})

    assert "ImproperlyConfigured" in failed.value.stderr
    assert complaint in failed.value.stderr


def test_intake_limits_come_from_the_environment():
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.MESSAGE_MAX_DEPTH, s.MESSAGE_MAX_BYTES, s.TICKET_TEXT_MAX_BYTES)"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "workflow_api.settings",
        "MESSAGE_MAX_DEPTH": "12",
        "MESSAGE_MAX_BYTES": "2097152",
        "TICKET_TEXT_MAX_BYTES": "4096",
    }
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=BASE_DIR, env=env, capture_output=True, text=True, check=True
    )

    assert completed.stdout.split() == ["12", "2097152", "4096"]


def test_a_copy_of_env_example_sets_nothing():
    """Copied to .env, the example never switches the service's mode (broker, database, DEBUG) silently."""
    active = [
        line
        for line in (BASE_DIR / ".env.example").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]

    assert active == []
