"""The demo (`make demo`) and the fake TTS server, run as a user runs them."""

import json
import os
import socket
import subprocess
import sys
import time
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


def test_demo_runs_its_eight_steps_and_passes_every_check(tmp_path):
    env = _clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        timeout=120,
    )

    completed = subprocess.run(
        [sys.executable, "test_workflow.py"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    for step in range(1, 9):
        assert f"[{step}/8]" in completed.stdout
    # The assignment engine's part: a decision record printed in full.
    assert '"strategy": "load_balanced"' in completed.stdout
    assert "unavailable user 32 was skipped" in completed.stdout
    assert "escalated once" in completed.stdout
    assert "moved on to the Manager step by itself" in completed.stdout
    assert "FAIL" not in completed.stdout
    assert "checks, all passed" in completed.stdout


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
