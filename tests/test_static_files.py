"""Under gunicorn with DEBUG off, the service serves its own static files (admin, API docs)."""

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.test_demo_and_fake_tts import _clean_env, _free_port, get_when_listening

BASE_DIR = Path(__file__).resolve().parent.parent


def test_collected_static_files_are_served_by_the_app_server(tmp_path):
    env = _clean_env(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="a-long-random-test-secret-key-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DATABASE_URL=f"sqlite:///{tmp_path / 'static.sqlite3'}",
    )
    static_root = tmp_path / "static"
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env={**env, "DJANGO_STATIC_ROOT": str(static_root)},
        check=True,
        timeout=120,
    )
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "workflow_api.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=BASE_DIR,
        env={**env, "DJANGO_STATIC_ROOT": str(static_root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        swagger = get_when_listening(
            f"{base}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
        )
        admin_css = requests.get(f"{base}/static/admin/css/base.css", timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=15)

    assert swagger.status_code == 200
    assert "javascript" in swagger.headers["Content-Type"]
    assert admin_css.status_code == 200
    assert os.path.isfile(static_root / "admin" / "css" / "base.css")
