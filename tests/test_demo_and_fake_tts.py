"""The demo (`make demo`) and the fake TTS server, run as a user runs them."""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parent.parent


def _clean_env(**extra: str) -> dict:
    """The environment of a new user: no database, broker or TTS configured."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "TTS_"))
    }
    env.pop("REQUIRE_SERVICES", None)
    return {**env, **extra}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_when_listening(url: str, *, timeout: float = 30, **kwargs) -> requests.Response:
    """GET `url` as soon as a server just started answers there; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, timeout=5, **kwargs)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _rows(database: Path) -> list[str]:
    """Every row of every table of a SQLite database, as SQL text."""
    with closing(sqlite3.connect(database)) as connection:
        return list(connection.iterdump())


def _run_demo(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "test_workflow.py"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_demo_runs_its_eight_steps_on_its_own_database_and_leaves_the_services_untouched(tmp_path):
    service_db = tmp_path / "service.sqlite3"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # The service's database, with a workflow of its own that the demo's
    # catch-all would otherwise compete with, and a broker the demo must not use.
    env = _clean_env(
        DATABASE_URL=f"sqlite:///{service_db}",
        DJANGO_CELERY_BROKER_URL="redis://127.0.0.1:9/0",
        TMPDIR=str(scratch),
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        timeout=120,
    )
    with closing(sqlite3.connect(service_db)) as connection, connection:
        connection.execute(
            "INSERT INTO workflow_workflows (name, description, department, category, sub_category, "
            "is_published, status, end_logic, default_priority, created_at, updated_at) VALUES ('Real one', "
            "'', 'IT Department', 'IT Support', '', 1, 'draft', '', 'medium', '2026-01-01', '2026-01-01')"
        )
    before = _rows(service_db)

    runs = [_run_demo(env), _run_demo(env)]

    for completed in runs:
        assert completed.returncode == 0, completed.stdout + completed.stderr
        for step in range(1, 9):
            assert f"[{step}/8]" in completed.stdout
        # The assignment engine's part: a decision record printed in full.
        assert '"strategy": "load_balanced"' in completed.stdout
        assert "unavailable user 32 was skipped" in completed.stdout
        # The lifecycle's part: a deadline, one escalation, a completion rule.
        assert "escalated once" in completed.stdout
        assert "moved on to the Manager step by itself" in completed.stdout
        assert "FAIL" not in completed.stdout
        assert "checks, all passed" in completed.stdout
        assert "in-process" in completed.stdout
    assert _rows(service_db) == before
    assert list(scratch.iterdir()) == [], "the demo left its throwaway database behind"


def test_fake_tts_runs_on_its_own_and_serves_lists_from_a_json_file(tmp_path):
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({"Night Shift": [5, 8]}))
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fake_tts", "--port", str(port), "--roles", str(roles)],
        cwd=BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1/tts/round-robin/"
    try:
        known = get_when_listening(url, params={"role_name": "Night Shift"})
        unknown = requests.get(url, params={"role_name": "Nobody"}, timeout=2)
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert known.status_code == 200
    assert known.json() == [5, 8]
    assert unknown.json() == []
