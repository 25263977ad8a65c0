"""Cost as the task table grows: each read endpoint's median latency at a small and a large size, in one run.

Each size is loaded with `seed_bench_data` (1,000 users, fewer where a
user's first page would not be full; 3 per task; 300 tickets a day) into a
database of its own, then every endpoint is asked one request at a time through
gunicorn with a JWT, going round the endpoints and the sizes after a
warm-up; the median is compared between sizes. Called by bench.run.
"""

import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_WORKFLOW = "Bench: IT technical assistance"  # task.seeding.BENCH_WORKFLOW

# How much slower the largest size may be than the smallest.
GROWTH_MAX = 2.0
STATISTICS_MS_MAX = 50.0
# A non-staff caller: among the users at every size (at least 3), on 3 of every `users` tasks.
ASSIGNEE_ID = 2
PAGES_DEEP = 20

ENDPOINTS = (
    ("task_list", "staff task list, first page"),
    ("task_list_status", "  ?status=completed"),
    ("task_list_workflow", "  ?workflow_id="),
    ("task_list_ticket", "  ?ticket_id="),
    ("task_list_overdue", "  ?overdue=true"),
    ("own_tasks", "non-staff caller's own tasks"),
    ("task_list_page_20", "20th page, following next"),
    ("task_detail", "task detail"),
    ("ticket_list", "ticket list, first page"),
    ("ticket_detail", "ticket detail"),
    ("workflow_statistics", "workflow_statistics"),
    ("assignment_report", "assignment report, 30 days"),
    ("next_assignees", "next_assignees, load balanced"),
)


# Tickets a day in the bench data: even the smallest size spans a 30-day
# report window, so every size's window holds the same assignments and the
# report compares like with like.
PER_DAY = 300


def users_for(tasks: int) -> int:
    """1,000 users (the issue's U), fewer where a user would not fill a first page of 50."""
    return min(1000, max(3, tasks * 3 // 50))


class ScaleRun:
    """The scale measurement beside a Bench (its process control, environment and database URL).

    Every size gets a database of its own (`<bench database>_scale_<size>`,
    dropped and created afresh, migrated and loaded with
    `manage.py seed_bench_data`), its own fake TTS (listing that size's
    users) and its own gunicorn; requests then go round the endpoints and
    the sizes, so the machine's noise falls on every size alike.
    """

    def __init__(self, bench, *, sizes: list[int], requests: int, log) -> None:
        self.bench = bench
        self.sizes = sizes
        self.requests = requests
        self.log = log
        self.databases: list[str] = []

    def run(self) -> dict:
        from workflow_api.authentication import mint_token

        self.staff = {"Authorization": f"Bearer {mint_token(user_id=1, is_staff=True)}", "Host": "127.0.0.1"}
        self.assignee = {
            "Authorization": f"Bearer {mint_token(user_id=ASSIGNEE_ID, is_staff=False)}",
            "Host": "127.0.0.1",
        }
        try:
            per_size = [self.seed(size) for size in self.sizes]
            for index, seeded in enumerate(per_size):
                self.serve(index, seeded)
            self.measure(per_size)
        finally:
            for index in range(len(self.sizes)):
                self.bench.procs.stop(f"gunicorn_scale_{index}")
                self.bench.procs.stop(f"fake_tts_scale_{index}")
            self.drop_databases()
        return self.summary(per_size)

    # --- data ---
    def admin(self):
        parts = urlsplit(self.bench.database_url)
        return psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True)

    def seed(self, size: int) -> dict:
        from bench.run import BenchError

        parts = urlsplit(self.bench.database_url)
        name = f"{parts.path.lstrip('/')}_scale_{size}"
        url = parts._replace(path=f"/{name}").geturl()
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        env = {**self.bench.env, "DATABASE_URL": url, "DJANGO_LOG_LEVEL": "WARNING"}
        users = users_for(size)
        manage = [sys.executable, "manage.py"]
        started = time.perf_counter()
        for argv in (
            [*manage, "migrate", "--noinput", "-v", "0"],
            [*manage, "seed_bench_data", "--tasks", str(size), "--users", str(users)]
            + ["--per-day", str(PER_DAY)],
        ):
            done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
            if done.returncode:
                raise BenchError(f"{' '.join(argv[1:3])} for {size:,} tasks failed:\n{done.stderr[-2000:]}")
        seconds = time.perf_counter() - started
        self.log(f"scale: {size:,} tasks for {users} users migrated and seeded in {seconds:.1f} s")
        with psycopg.connect(url, autocommit=True) as conn:
            # Write the seed's pages out now rather than during the measurements.
            with contextlib.suppress(psycopg.Error):
                conn.execute("CHECKPOINT")
            step_id, role_id, role, workflow_id = conn.execute(
                "SELECT s.step_id, r.role_id, r.name, s.workflow_id FROM workflow_steps s"
                " JOIN workflow_roles r ON r.role_id = s.role_id"
                " JOIN workflow_workflows w ON w.workflow_id = s.workflow_id WHERE w.name = %s",
                [BENCH_WORKFLOW],
            ).fetchone()
            conn.execute(
                "UPDATE workflow_steps SET assignment_strategy = 'load_balanced' WHERE step_id = %s",
                [step_id],
            )
            task_id, ticket_id = conn.execute(
                "SELECT task_id, ticket_id FROM task_task ORDER BY task_id OFFSET %s LIMIT 1", [size // 2]
            ).fetchone()
        since = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "tasks": size,
            "users": users,
            "role": role,
            "database_url": url,
            "seed_seconds": round(seconds, 1),
            "paths": {
                "task_list": "/tasks/api/tasks/?page_size=50",
                "task_list_status": "/tasks/api/tasks/?page_size=50&status=completed",
                "task_list_workflow": f"/tasks/api/tasks/?page_size=50&workflow_id={workflow_id}",
                "task_list_ticket": f"/tasks/api/tasks/?ticket_id={ticket_id}",
                "task_list_overdue": "/tasks/api/tasks/?page_size=50&overdue=true",
                "own_tasks": "/tasks/api/tasks/?page_size=50",
                "task_detail": f"/tasks/api/tasks/{task_id}/",
                "ticket_list": "/tickets/api/tickets/?page_size=50",
                "ticket_detail": f"/tickets/api/tickets/{ticket_id}/",
                "workflow_statistics": "/tasks/api/tasks/workflow_statistics/",
                "assignment_report": f"/workflow/api/roles/{role_id}/assignment_report/?since={since}",
                "next_assignees": f"/workflow/api/steps/{step_id}/next_assignees/?count=5",
            },
        }

    def drop_databases(self) -> None:
        with contextlib.suppress(psycopg.Error), self.admin() as conn:
            for name in self.databases:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # --- servers ---
    def serve(self, index: int, seeded: dict) -> None:
        """A fake TTS listing this size's users, and gunicorn on this size's database."""
        from bench.run import VENV_BIN, free_port, wait_until

        tts_port, port = free_port(), free_port()
        roles = json.dumps({seeded["role"]: list(range(1, seeded["users"] + 1))})
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, dir=self.bench.log_dir) as file:
            file.write(roles)
        tts_argv = [sys.executable, "-m", "fake_tts", "--host", "127.0.0.1", "--port", str(tts_port)]
        tts_name = f"fake_tts_scale_{index}"
        self.bench.procs.start(tts_name, [*tts_argv, "--roles", file.name], self.bench.env)

        def tts_up() -> bool:
            self.bench.procs.check_alive(tts_name)
            try:
                return self.get(tts_port, "/_stats", {})[0] == 200
            except OSError:
                return False

        wait_until(tts_up, timeout=20, interval=0.1, what=tts_name)
        env = {
            **self.bench.env,
            "DATABASE_URL": seeded["database_url"],
            "TTS_SERVICE_URL": f"http://127.0.0.1:{tts_port}",
        }
        argv = [str(VENV_BIN / "gunicorn"), "workflow_api.wsgi:application"]
        argv += ["--bind", f"127.0.0.1:{port}", "--workers", "2"]
        name = f"gunicorn_scale_{index}"
        self.bench.procs.start(name, argv, env)

        def up() -> bool:
            self.bench.procs.check_alive(name)
            try:
                return self.get(port, "/tasks/api/tasks/?page_size=1", self.staff)[0] == 200
            except OSError:
                return False

        wait_until(up, timeout=30, interval=0.2, what=name)
        seeded["port"] = port

    # --- requests ---
    def get(self, port: int, path: str, headers: dict) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def deep_page(self, port: int, first: str) -> str:
        """The path of the PAGES_DEEP-th page, reached by following `next` links."""
        from bench.run import BenchError

        path = first
        for _ in range(PAGES_DEEP - 1):
            status, body = self.get(port, path, self.staff)
            if status != 200:
                raise BenchError(f"{path} answered {status}")
            parts = urlsplit(json.loads(body)["next"])
            path = f"{parts.path}?{parts.query}"
        return path

    def measure(self, per_size: list[dict]) -> None:
        """Median per endpoint and size; requests go round the endpoints and the sizes."""
        from bench.run import BenchError

        for seeded in per_size:
            seeded["paths"]["task_list_page_20"] = self.deep_page(
                seeded["port"], seeded["paths"]["task_list"]
            )
        times = [{name: [] for name, _ in ENDPOINTS} for _ in per_size]
        for round_number in range(self.requests + 3):
            for name, _ in ENDPOINTS:
                headers = self.assignee if name == "own_tasks" else self.staff
                for index, seeded in enumerate(per_size):
                    path = seeded["paths"][name]
                    started = time.perf_counter()
                    status, body = self.get(seeded["port"], path, headers)
                    elapsed = (time.perf_counter() - started) * 1000
                    if status != 200:
                        raise BenchError(f"{path} answered {status}: {body[:300]!r}")
                    if round_number >= 3:  # warm-up: connections, caches
                        times[index][name].append(elapsed)
        for seeded, measured in zip(per_size, times, strict=True):
            seeded["medians_ms"] = {
                name: round(statistics.median(values), 2) for name, values in measured.items()
            }
            self.log(
                f"scale: {seeded['tasks']:,} tasks: "
                + ", ".join(f"{name} {value:.1f}" for name, value in seeded["medians_ms"].items())
                + " (median ms)"
            )

    def summary(self, per_size: list[dict]) -> dict:
        small, large = per_size[0], per_size[-1]
        rows = {}
        for name, label in ENDPOINTS:
            first, last = small["medians_ms"][name], large["medians_ms"][name]
            growth = last / first if first else float("inf")
            ok = growth <= GROWTH_MAX
            if name == "workflow_statistics":
                ok = ok or last <= STATISTICS_MS_MAX
            rows[name] = {
                "label": label,
                "medians_ms": [entry["medians_ms"][name] for entry in per_size],
                "growth": round(growth, 2),
                "pass": ok,
            }
        return {
            "sizes": [entry["tasks"] for entry in per_size],
            "users": [entry["users"] for entry in per_size],
            "seed_seconds": [entry["seed_seconds"] for entry in per_size],
            "requests_per_endpoint": self.requests,
            "server": "gunicorn, 2 sync workers per size, one request at a time, sizes in turn",
            "paths": {str(entry["tasks"]): entry["paths"] for entry in per_size},
            "endpoints": rows,
            "growth_max": GROWTH_MAX,
            "statistics_ms_max": STATISTICS_MS_MAX,
            "load_average": [round(v, 2) for v in os.getloadavg()],
        }


def table(scale: dict) -> str:
    sizes = scale["sizes"]
    header = "".join(f"{size:>12,}" for size in sizes)
    rows = [
        f"Scale ({scale['server']}, median of {scale['requests_per_endpoint']} requests; "
        f"users {scale['users']}; seeded in {scale['seed_seconds']} s):",
        f"  {'endpoint (median ms)':<38}{header}{'growth':>9}",
    ]
    for entry in scale["endpoints"].values():
        medians = "".join(f"{value:>12.1f}" for value in entry["medians_ms"])
        verdict = "PASS" if entry["pass"] else "FAIL"
        rows.append(f"  {entry['label']:<38}{medians}{entry['growth']:>8.2f}x {verdict}")
    return "\n".join(rows)


def verdicts(scale: dict) -> list[tuple[str, str, bool]]:
    small, large = scale["sizes"][0], scale["sizes"][-1]
    lines = []
    for entry in scale["endpoints"].values():
        target = f"{entry['label'].strip()}: {large:,} within {scale['growth_max']:g}x of {small:,}"
        measured = (
            f"{entry['medians_ms'][0]:.1f} -> {entry['medians_ms'][-1]:.1f} ms ({entry['growth']:.2f}x)"
        )
        lines.append((target, measured, entry["pass"]))
    stats = scale["endpoints"]["workflow_statistics"]["medians_ms"][-1]
    lines.append(
        (
            f"workflow_statistics <= {scale['statistics_ms_max']:g} ms at {large:,}",
            f"{stats:.1f} ms",
            stats <= scale["statistics_ms_max"],
        )
    )
    return lines


def draw(scale: dict, ax) -> None:
    """Median per endpoint at each size, on `ax`."""
    names = list(scale["endpoints"])
    width = 0.8 / len(scale["sizes"])
    for index, size in enumerate(scale["sizes"]):
        values = [scale["endpoints"][name]["medians_ms"][index] for name in names]
        ax.barh(
            [n + index * width for n in range(len(names))],
            values,
            height=width,
            label=f"{size:,} tasks",
        )
    ax.set_yticks([n + width * (len(scale["sizes"]) - 1) / 2 for n in range(len(names))])
    ax.set_yticklabels([scale["endpoints"][name]["label"].strip() for name in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("median latency (ms), one request at a time")
    ax.set_title("Cost as the task table grows")
    ax.legend()
