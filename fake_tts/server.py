"""Fake TTS server: `python -m fake_tts --port 8002 --roles fake_tts/roles.json`.

Serves GET /api/v1/tts/round-robin/?role_name=... from a JSON file mapping
role names to user id lists (unknown role: []). Tests and benchmarks steer it
through a small control API on the same port:

  POST /_control   {"mode": "ok" | "error" | "malformed", "status": 503,
                    "body": <raw text for malformed>, "delay": 0.5,
                    "roles": {...}}   (every key optional; replaces those settings)
  GET  /_stats     {"calls": N, "calls_by_role": {...}}
  POST /_reset     back to the file's roles, mode ok, no delay, counters zero
"""

import argparse
import contextlib
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger("fake_tts")

ROUND_ROBIN_PATH = "/api/v1/tts/round-robin/"
DEFAULT_ROLES_FILE = Path(__file__).with_name("roles.json")


class FakeTTSState:
    """What the server answers; changed at run time through /_control."""

    def __init__(self, roles: dict[str, list[int]]) -> None:
        self._initial_roles = dict(roles)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.roles = dict(self._initial_roles)
            self.mode = "ok"
            self.error_status = 503
            self.malformed_body = "<html>Bad gateway</html>"
            self.delay = 0.0
            self.calls_by_role: dict[str, int] = {}

    def configure(self, settings: dict) -> None:
        with self._lock:
            self.mode = settings.get("mode", self.mode)
            self.error_status = int(settings.get("status", self.error_status))
            self.malformed_body = settings.get("body", self.malformed_body)
            self.delay = float(settings.get("delay", self.delay))
            if "roles" in settings:
                self.roles = dict(settings["roles"])

    def record_call(self, role_name: str) -> None:
        with self._lock:
            self.calls_by_role[role_name] = self.calls_by_role.get(role_name, 0) + 1

    def stats(self) -> dict:
        with self._lock:
            return {"calls": sum(self.calls_by_role.values()), "calls_by_role": dict(self.calls_by_role)}


class FakeTTSHandler(BaseHTTPRequestHandler):
    server_version = "FakeTTS/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server behind a pooled client
    # Headers and body go out in separate writes; with Nagle's algorithm on, the
    # body waits for the client's delayed ACK (~40 ms per call on keep-alive).
    # Real servers (gunicorn, nginx) set TCP_NODELAY too.
    disable_nagle_algorithm = True

    @property
    def state(self) -> FakeTTSState:
        return self.server.state

    def log_message(self, format: str, *args) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: str, content_type: str = "application/json") -> None:
        encoded = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_stats":
            self._send(200, json.dumps(self.state.stats()))
            return
        if url.path != ROUND_ROBIN_PATH:
            self._send(404, json.dumps({"detail": "Not found."}))
            return
        role_name = parse_qs(url.query).get("role_name", [""])[0]
        self.state.record_call(role_name)
        if self.state.delay:
            time.sleep(self.state.delay)
        if self.state.mode == "error":
            self._send(self.state.error_status, json.dumps({"detail": "unavailable"}))
        elif self.state.mode == "malformed":
            self._send(200, self.state.malformed_body, "text/html")
        else:
            self._send(200, json.dumps(self.state.roles.get(role_name, [])))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        if self.path == "/_control":
            self.state.configure(json.loads(raw or b"{}"))
        elif self.path == "/_reset":
            self.state.reset()
        else:
            self._send(404, json.dumps({"detail": "Not found."}))
            return
        self._send(200, json.dumps({"ok": True}))


def make_server(
    host: str = "127.0.0.1", port: int = 0, roles: dict[str, list[int]] | None = None
) -> ThreadingHTTPServer:
    """A ready-to-serve fake TTS; port 0 picks a free port (see server.server_address)."""
    if roles is None:
        roles = json.loads(DEFAULT_ROLES_FILE.read_text())
    server = ThreadingHTTPServer((host, port), FakeTTSHandler)
    server.daemon_threads = True
    server.state = FakeTTSState(roles)
    return server


def start_in_thread(**kwargs) -> tuple[ThreadingHTTPServer, str]:
    """Start a fake TTS in a daemon thread; returns (server, base_url)."""
    server = make_server(**kwargs)
    threading.Thread(target=server.serve_forever, name="fake-tts", daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument(
        "--roles", type=Path, default=DEFAULT_ROLES_FILE, help="JSON file: role name -> user ids"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = make_server(args.host, args.port, json.loads(args.roles.read_text()))
    logger.info("Fake TTS serving %s on http://%s:%s", args.roles, *server.server_address[:2])
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
