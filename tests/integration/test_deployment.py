"""docker-compose.yml, Dockerfile and settings agree: the names, hosts and commands the code expects.

No container engine runs here, so the compose file is read, its environment
resolved the way compose would, and the settings loaded with it.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
import yaml

from tests.integration.conftest import REPO

APP_SERVICES = ("web", "worker", "beat", "tts")
SETTINGS_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.urls import reverse
from workflow_api.celery import app
db = settings.DATABASES["default"]
print(json.dumps({
    "debug": settings.DEBUG,
    "db": [db["ENGINE"], db["HOST"], str(db["PORT"]), db["NAME"], db["USER"], db["PASSWORD"]],
    "broker": app.conf.broker_url,
    "eager": app.conf.task_always_eager,
    "tts": settings.TTS_SERVICE_URL,
    "queues": sorted(queue.name for queue in app.conf.task_queues),
    "receive_route": app.conf.task_routes["tickets.tasks.receive_ticket"]["queue"],
    "visibility": app.conf.broker_transport_options["visibility_timeout"],
    "time_limit": app.conf.task_time_limit,
    "health": reverse("health"),
}))
"""


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _resolve(value: str) -> str:
    """Compose's variable substitution, with nothing set in the environment but the required secret."""

    def substitute(match: re.Match) -> str:
        name, operator, word = match.group(1), match.group(2), match.group(3) or ""
        if operator == ":?":
            return f"value-of-{name.lower()}-supplied-by-the-operator"
        return word if operator == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", substitute, value)


def _environment(service: dict) -> dict[str, str]:
    return {name: _resolve(str(value)) for name, value in (service.get("environment") or {}).items()}


def _command(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def _settings_read_by_the_code() -> set[str]:
    source = (REPO / "workflow_api" / "settings.py").read_text()
    return set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))


def _probe_settings(environment: dict[str, str]) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "workflow_api.settings", **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_compose_runs_postgres_redis_web_worker_beat_nginx_and_the_fake_tts(compose):
    services = compose["services"]

    assert {"postgres", "redis", "proxy", *APP_SERVICES} <= set(services)
    for name in APP_SERVICES:
        assert services[name]["build"] == ".", f"{name} is not built from this repository's Dockerfile"
    assert _command(services["worker"])[:4] == ["celery", "-A", "workflow_api", "worker"]
    # Without -Q a worker consumes every queue in CELERY_TASK_QUEUES (checked below).
    assert "-Q" not in _command(services["worker"]) and "--queues" not in " ".join(
        _command(services["worker"])
    )
    assert _command(services["beat"])[:4] == ["celery", "-A", "workflow_api", "beat"]
    web = " ".join(_command(services["web"]))
    assert "manage.py migrate" in web
    assert "gunicorn workflow_api.wsgi:application" in web
    assert _command(services["tts"])[:3] == ["python", "-m", "fake_tts"]


def test_every_variable_compose_sets_is_one_the_settings_read(compose):
    read = _settings_read_by_the_code()

    for name in APP_SERVICES:
        assert set(_environment(compose["services"][name])) - read == set(), name
    for required in ("DJANGO_SECRET_KEY", "DATABASE_URL", "DJANGO_CELERY_BROKER_URL", "TTS_SERVICE_URL"):
        assert required in _environment(compose["services"]["worker"])


def test_settings_loaded_with_the_compose_environment_point_at_the_compose_services(compose):
    services = compose["services"]
    postgres = _environment(services["postgres"])
    environment = _environment(services["worker"])
    for name in ("web", "beat"):
        assert _environment(services[name]) == environment, f"{name} is configured unlike the worker"

    # The fake TTS of the "local" profile, as the README's local command points at it.
    probed = _probe_settings({**environment, "TTS_SERVICE_URL": "http://tts:8002"})

    assert probed["debug"] is False
    assert probed["db"] == [
        "django.db.backends.postgresql",
        "postgres",
        "5432",
        postgres["POSTGRES_DB"],
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    ]
    broker = urlsplit(probed["broker"])
    assert (broker.scheme, broker.hostname) == ("redis", "redis")
    assert probed["eager"] is False
    tts = urlsplit(probed["tts"])
    tts_command = _command(services["tts"])
    assert tts.hostname == "tts"
    assert str(tts.port) == tts_command[tts_command.index("--port") + 1]
    # Inside its container: the other services must reach it.
    assert tts_command[tts_command.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert probed["receive_route"] == "TICKET_TASKS_PRODUCTION"
    assert probed["queues"] == sorted(["TICKET_TASKS_PRODUCTION", "workflow_api"])
    assert probed["visibility"] == int(environment["CELERY_VISIBILITY_TIMEOUT"])
    # Warm shutdown must be allowed to outlast the longest task.
    assert int(services["worker"]["stop_grace_period"].rstrip("s")) > probed["time_limit"]
    # The web health check calls the health endpoint on the port gunicorn binds.
    assert f"http://localhost:8000{probed['health']}" in " ".join(services["web"]["healthcheck"]["test"])
    assert "--bind 0.0.0.0:8000" in " ".join(_command(services["web"]))


def test_services_start_in_dependency_order_and_redis_keeps_messages_across_restarts(compose):
    services = compose["services"]

    assert services["web"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in ("worker", "beat"):
        # After web: its migrations have run.
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"
    redis_command = _command(services["redis"])
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"


def test_the_image_installs_the_pinned_requirements_and_leaves_local_files_out():
    dockerfile = (REPO / "Dockerfile").read_text()
    ignored = (REPO / ".dockerignore").read_text().split()

    assert "COPY requirements.txt" in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
    assert re.search(r"^USER \w+", dockerfile, re.M), "the image runs as root"
    assert {".env", ".venv", ".git", "db.sqlite3"} <= set(ignored)
    requirements = (REPO / "requirements.txt").read_text()
    for package in ("gunicorn==", "celery[redis]==", "psycopg[binary]=="):
        assert package in requirements


def _manage_with(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "workflow_api.settings", **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_defaults_pass_the_deploy_check(compose):
    environment = _environment(compose["services"]["web"])

    result = _manage_with(environment, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr + result.stdout


def test_the_fake_tts_runs_only_in_the_local_profile_and_is_never_a_default(compose):
    services = compose["services"]
    raw_environment = compose["x-app-environment"]

    assert services["tts"]["profiles"] == ["local"]
    for name, service in services.items():
        if "profiles" not in service:
            assert "tts" not in (service.get("depends_on") or {}), f"{name} needs the fake TTS"
    # No default at all: an operator must name the identity service.
    assert re.fullmatch(r"\$\{TTS_SERVICE_URL:\?[^}]+\}", raw_environment["TTS_SERVICE_URL"])
    for secret in ("DJANGO_SECRET_KEY", "JWT_SIGNING_KEY", "JWT_ISSUER"):
        assert ":?" in raw_environment[secret], secret


def test_gunicorn_is_reached_only_through_the_buffering_nginx(compose):
    services = compose["services"]
    proxy = services["proxy"]
    config_path, mounted_at = proxy["volumes"][0].split(":")[:2]
    config = (REPO / config_path).read_text()
    environment = _environment(services["web"])

    assert "ports" not in services["web"]
    assert proxy["image"].startswith("nginx:")
    assert proxy["ports"] == ["8000:80"]
    assert mounted_at == "/etc/nginx/conf.d/default.conf"
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    assert "proxy_pass http://web:8000;" in config  # where gunicorn binds
    for directive in (
        "server_tokens off;",
        "proxy_buffering on;",
        "proxy_request_buffering on;",
        "client_header_timeout 10s;",
        "client_body_timeout 10s;",
        "client_max_body_size 1m;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    ):
        assert directive in config, directive
    # The service reads the client address nginx appended, and HTTPS from its X-Forwarded-Proto.
    assert environment["TRUSTED_PROXY_COUNT"] == "1"
    assert environment["DJANGO_BEHIND_TLS_PROXY"] == "true"
    # Throttle counters are shared by every gunicorn worker.
    assert environment["DJANGO_CACHE_URL"].startswith("redis://redis:6379/")
    assert environment["DJANGO_CACHE_URL"] != environment["DJANGO_CELERY_BROKER_URL"]
