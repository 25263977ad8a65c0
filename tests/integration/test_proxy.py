"""deploy/nginx.conf in front of gunicorn: slow clients stall nginx, not gunicorn's sync workers.

Runs the real nginx (Debian's nginx package) with the compose
configuration, pointed at a local gunicorn with one sync worker instead of
the compose service `web`.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.integration.conftest import REPO, free_port, wait_until

pytestmark = [pytest.mark.integration]

NGINX_MISSING = "nginx is not installed (apt-get install nginx)"
# Debian installs it in /usr/sbin, which a non-root PATH leaves out.
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")

SLOW_CLIENTS = 3


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _get(url: str, **kwargs) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5, **kwargs)
    except requests.ConnectionError:
        return None


@pytest.fixture
def gunicorn_port(tmp_path):
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "workflow_api.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "proxy-test-secret-key-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'proxy.sqlite3'}",
    }
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
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/health/"), timeout=30, what="gunicorn to answer")
        yield port
    finally:
        _stop(server)


@pytest.fixture
def nginx_port(tmp_path, gunicorn_port):
    # CI (REQUIRE_SERVICES=1) installs nginx and must run these; a bare local run skips, saying why.
    if NGINX is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"REQUIRE_SERVICES is set and {NGINX_MISSING}", pytrace=False)
        pytest.skip(NGINX_MISSING)
    port = free_port()
    site = (REPO / "deploy" / "nginx.conf").read_text()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace("http://web:8000;", f"http://127.0.0.1:{gunicorn_port};")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"""
        daemon off;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log;
        events {{}}
        http {{
            access_log off;
            client_body_temp_path {tmp_path}/body;
            proxy_temp_path {tmp_path}/proxy;
            include {tmp_path}/site.conf;
        }}
        """
    )
    command = [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/health/"), timeout=30, what="nginx to answer")
        yield port
    finally:
        _stop(server)


def _slow_clients(port: int) -> list[socket.socket]:
    """Connections that start a request and never finish its headers."""
    clients = []
    for _ in range(SLOW_CLIENTS):
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        clients.append(client)
    return clients


def test_slow_clients_do_not_stall_health_behind_nginx(nginx_port):
    clients = _slow_clients(nginx_port)
    try:
        started = time.monotonic()
        response = requests.get(f"http://127.0.0.1:{nginx_port}/health/", timeout=5)
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            client.close()

    assert response.status_code == 200
    assert elapsed < 1.0


def test_the_same_slow_clients_stall_gunicorn_reached_directly(gunicorn_port):
    """Why nginx is there: one sync worker waits on the first slow client's headers."""
    clients = _slow_clients(gunicorn_port)
    try:
        with pytest.raises(requests.Timeout):
            requests.get(f"http://127.0.0.1:{gunicorn_port}/health/", timeout=3)
    finally:
        for client in clients:
            client.close()


def test_nginx_names_no_version_and_answers_head_on_health(nginx_port):
    base = f"http://127.0.0.1:{nginx_port}"

    get = requests.get(f"{base}/health/", timeout=5)
    head = requests.head(f"{base}/health/", timeout=5)

    assert get.headers["Server"] == "nginx"
    assert (head.status_code, head.headers["Server"], head.content) == (200, "nginx", b"")
    assert {"private", "no-store"} <= {part.strip() for part in get.headers["Cache-Control"].split(",")}
