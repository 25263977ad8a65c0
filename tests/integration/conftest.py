"""Real services for integration tests: PostgreSQL, Redis, `celery worker` processes, a fake TTS over HTTP.

Every test gets its own queue names, so stray messages of an earlier test
(a killed worker's unacknowledged ones come back after the visibility
timeout) never reach a later test's workers. Workers read the pytest-created
test database. Every spawned process is killed by a finalizer.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connections

from fake_tts.server import start_in_thread
from tickets import tasks

REPO = Path(__file__).resolve().parents[2]
ROLE = "IT Support Technician"
SEVEN_USERS = [3, 6, 7, 11, 12, 21, 31]


def _services_problem() -> str | None:
    """Why PostgreSQL or Redis cannot be used, or None."""
    database = settings.DATABASES["default"]
    if "postgresql" not in database["ENGINE"]:
        return "DATABASE_URL must point at PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/test)"
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        return "DJANGO_CELERY_BROKER_URL must point at Redis (e.g. redis://127.0.0.1:6379/0)"
    import psycopg

    try:
        psycopg.connect(
            host=database["HOST"] or "127.0.0.1",
            port=database["PORT"] or 5432,
            user=database["USER"] or None,
            password=database["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return f"PostgreSQL unreachable: {exc}"
    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis unreachable: {exc}"
    return None


@pytest.fixture(scope="session")
def _services_problem_once() -> str | None:
    return _services_problem()


@pytest.fixture(autouse=True)
def _require_services(request, _services_problem_once):
    """CI (REQUIRE_SERVICES=1) fails when a service is missing; a bare local run skips, saying why."""
    if not request.node.get_closest_marker("integration") or _services_problem_once is None:
        return
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(_services_problem_once, pytrace=False)
    pytest.skip(f"{_services_problem_once} (REQUIRE_SERVICES=1 turns this into a failure)")


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.2):
    """Poll until `predicate()` is truthy and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def worker_database_url() -> str:
    """The pytest-created test database, as a DATABASE_URL for worker processes."""
    db = connections["default"].settings_dict
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def tts_calls(server) -> int:
    return server.state.stats()["calls"]


def free_port() -> int:
    """A local port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Broker:
    """The Redis broker of this test, with queue names nobody else consumes."""

    def __init__(self) -> None:
        self.url = settings.CELERY_BROKER_URL
        token = uuid.uuid4().hex[:8]
        self.ticket_queue = f"{settings.TICKET_TASKS_QUEUE}.{token}"
        self.workflow_queue = f"{settings.WORKFLOW_TASKS_QUEUE}.{token}"
        self.redis = redis.Redis.from_url(self.url, socket_connect_timeout=3, socket_timeout=10)

    def send_ticket(self, payload: dict) -> None:
        """What a producer does: enqueue receive_ticket on the ticket queue."""
        tasks.receive_ticket.apply_async(args=[payload], queue=self.ticket_queue)

    def _our_unacked(self) -> list[bytes]:
        tags = []
        for tag, raw in self.redis.hgetall("unacked").items():
            _message, _exchange, routing_key = json.loads(raw)
            if routing_key in (self.ticket_queue, self.workflow_queue):
                tags.append(tag)
        return tags

    def idle(self) -> bool:
        """Nothing queued and nothing delivered but unacknowledged (in a worker, or waiting to retry)."""
        queued = sum(self.redis.llen(q) for q in (self.ticket_queue, self.workflow_queue))
        return queued == 0 and not self._our_unacked()

    def cleanup(self) -> None:
        try:
            for tag in self._our_unacked():
                self.redis.hdel("unacked", tag)
                self.redis.zrem("unacked_index", tag)
            for queue in (self.ticket_queue, self.workflow_queue):
                # The queue, and its bindings (the exchange is named after the queue).
                self.redis.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        except redis.RedisError:
            pass  # the broker test may have left Redis empty; nothing to clean then
        self.redis.close()


class Worker:
    """One `celery -A workflow_api worker` process (its own session, so the whole group can be killed)."""

    def __init__(self, name: str, env: dict, log_path: Path, concurrency: int, beat: bool) -> None:
        self.name = name
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workflow_api",
            "worker",
            f"--hostname={name}@%h",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            command += ["--beat", f"--schedule={log_path.with_suffix('.beat')}"]
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> "Worker":
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited early:\n{self.log()[-4000:]}")
            return " ready." in self.log()

        wait_until(ready, timeout=timeout, what=f"worker {self.name} to be ready")
        return self

    def pool_pids(self) -> list[int]:
        """The prefork pool's child processes."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                children.append(int(stat.parent.name))
        return children

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a crashed machine would."""
        if self.process.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._reap_group()

    def terminate(self) -> None:
        """Ask for a warm shutdown (SIGTERM) without waiting for it."""
        if self.process.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM); SIGKILL whatever is left after `timeout`."""
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._reap_group()
        self._log.close()

    def _reap_group(self) -> None:
        # Pool processes orphaned by a killed main process keep the group alive.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


class Cluster:
    """Starts worker processes for one test against its broker queues, test database and fake TTS."""

    def __init__(self, broker: Broker, tts_url: str, log_dir: Path) -> None:
        self.broker = broker
        self.log_dir = log_dir
        self.workers: list[Worker] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "workflow_api.settings",
            "DATABASE_URL": worker_database_url(),
            "DJANGO_CELERY_BROKER_URL": broker.url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "TICKET_TASKS_QUEUE": broker.ticket_queue,
            "WORKFLOW_TASKS_QUEUE": broker.workflow_queue,
            "TTS_SERVICE_URL": tts_url,
            "DJANGO_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # Short retries keep fault tests quick; the settings check still
            # requires the visibility timeout to outlast them.
            "ALLOCATION_RETRY_BACKOFF_MAX": "2",
        }

    def start(
        self, name: str, *, concurrency: int = 1, beat: bool = False, wait: bool = True, **env
    ) -> Worker:
        worker = Worker(
            name,
            {**self.env, **{key: str(value) for key, value in env.items()}},
            self.log_dir / f"{name}-{len(self.workers)}.log",
            concurrency,
            beat,
        )
        self.workers.append(worker)
        return worker.wait_ready() if wait else worker

    def logs(self) -> str:
        return "\n".join(worker.log() for worker in self.workers)

    def stop_all(self) -> None:
        # Signal every worker first: their warm shutdowns then run in parallel.
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.stop(timeout=15)


@pytest.fixture
def broker() -> Iterator[Broker]:
    broker = Broker()
    yield broker
    broker.cleanup()


@pytest.fixture
def fake_tts():
    """A fake TTS on 127.0.0.1 over real HTTP; the role used by the tests lists seven users."""
    server, url = start_in_thread(roles={ROLE: SEVEN_USERS})
    server.url = url
    # When each request arrived, to measure the gaps between retries.
    server.call_times = []
    record_call = server.state.record_call

    def record_call_time(role_name: str) -> None:
        server.call_times.append(time.monotonic())
        record_call(role_name)

    server.state.record_call = record_call_time
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def cluster(transactional_db, broker, fake_tts, tmp_path) -> Iterator[Cluster]:
    """Worker processes for this test; all are stopped (then killed) before the database is flushed."""
    cluster = Cluster(broker, fake_tts.url, tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def it_workflow(transactional_db):
    """The deployed workflow every test ticket matches: one step for the role TTS lists."""
    from conftest import make_workflow
    from workflow.models import Roles

    return make_workflow(steps=[Roles.objects.create(name=ROLE)])
