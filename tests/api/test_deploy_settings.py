"""Production settings pass Django's deploy checks; a missing secret stops the service at start."""

import os
import subprocess
import sys
from pathlib import Path

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k3y-for-the-deploy-check-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "DJANGO_ALLOWED_HOSTS": "workflow.example.com",
    "JWT_SIGNING_KEY": "shared-hs256-key-for-the-deploy-check-test-0123456789abcdef",
    "JWT_ISSUER": "https://auth.example.com",
    "JWT_AUDIENCE": "workflow_api",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # A clean environment: nothing from the developer's shell decides the outcome.
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_values():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_a_jwt_signing_key():
    env = {key: value for key, value in PRODUCTION.items() if key != "JWT_SIGNING_KEY"}

    result = _manage("check", "--deploy", env=env)

    assert result.returncode != 0
    assert "workflow_api.E001" in result.stderr


def test_check_deploy_fails_with_debug_on():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION, "DJANGO_DEBUG": "true"}
    )

    assert result.returncode != 0
    assert "DEBUG" in result.stderr


def test_service_refuses_to_start_without_a_secret_key_when_debug_is_off():
    env = {key: value for key, value in PRODUCTION.items() if key != "DJANGO_SECRET_KEY"}

    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off." in result.stderr


def test_service_refuses_an_empty_secret_key_when_debug_is_off():
    result = _manage("check", env={**PRODUCTION, "DJANGO_SECRET_KEY": "  "})

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must not be empty" in result.stderr


def test_check_deploy_fails_with_a_short_jwt_signing_key():
    result = _manage("check", "--deploy", env={**PRODUCTION, "JWT_SIGNING_KEY": "short"})

    assert result.returncode != 0
    assert "workflow_api.E002" in result.stderr


def test_check_deploy_warns_when_tokens_are_not_bound_to_an_issuer_and_audience():
    env = {key: value for key, value in PRODUCTION.items() if key not in ("JWT_ISSUER", "JWT_AUDIENCE")}

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode != 0
    assert "workflow_api.W001" in result.stderr
    assert "workflow_api.W002" in result.stderr
