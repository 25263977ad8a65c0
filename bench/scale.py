"""Cost as the task table grows: each read endpoint's median latency at a small and a large size, in one run.

Each size is loaded with `seed_bench_data` (users scaled so a user's first
page is full at every size: N / 1,000 users, 3 per task), then every
endpoint is asked one request at a time through gunicorn with a JWT, after
a warm-up; the median is compared between sizes. Called by bench.run.
"""

import contextlib
import http.client
import json
import os
import statistics
import time
from datetime import timedelta
from urllib.parse import urlsplit

import psycopg

# How much slower the largest size may be than the smallest.
GROWTH_MAX = 2.0
STATISTICS_MS_MAX = 50.0
# A non-staff caller: user 5 holds 3 of every `users` tasks' assignments.
ASSIGNEE_ID = 5
PAGES_DEEP = 20

ENDPOINTS = (
    ("task_list", "staff task list, first page"),
    ("task_list_status", "  ?status=completed"),
    ("task_list_workflow", "  ?workflow_id="),
    ("task_list_ticket", "  ?ticket_id="),
    ("own_tasks", "non-staff caller's own tasks"),
    ("task_list_page_20", "20th page, following next"),
    ("task_detail", "task detail"),
    ("ticket_list", "ticket list, first page"),
    ("ticket_detail", "ticket detail"),
    ("workflow_statistics", "workflow_statistics"),
    ("assignment_report", "assignment report, 30 days"),
    ("next_assignees", "next_assignees, load balanced"),
)


def users_for(tasks: int) -> int:
    return max(tasks // 1000, 3)


class ScaleRun:
    """The scale measurement on a Bench (its processes, environment and database)."""

    def __init__(self, bench, *, sizes: list[int], requests: int, log) -> None:
        self.bench = bench
        self.sizes = sizes
        self.requests = requests
        self.log = log

    def run(self) -> dict:
        from bench.run import VENV_BIN, free_port, wait_until

        port = free_port()
        argv = [
            str(VENV_BIN / "gunicorn"),
            "workflow_api.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ]
        per_size = []
        for size in self.sizes:
            seeded = self.seed(size)
            self.bench.procs.start("gunicorn", argv, self.bench.env)
            try:

                def up() -> bool:
                    self.bench.procs.check_alive("gunicorn")
                    try:
                        return self.get(port, "/tasks/api/tasks/?page_size=1", self.staff)[0] == 200
                    except OSError:
                        return False

                wait_until(up, timeout=30, interval=0.2, what="gunicorn")
                per_size.append({**seeded, "medians_ms": self.measure(port, seeded)})
            finally:
                self.bench.procs.stop("gunicorn")
        return self.summary(per_size)

    # --- data ---
    def seed(self, size: int) -> dict:
        from django.utils import timezone

        from task import seeding
        from task.models import Task
        from workflow.models import Steps
        from workflow_api.authentication import mint_token

        self.bench.truncate_pipeline()
        users = users_for(size)
        started = time.perf_counter()
        result = seeding.seed_bench_data(tasks=size, users=users)
        seconds = time.perf_counter() - started
        self.log(f"scale: seeded {size:,} tasks for {users} users in {seconds:.1f} s")
        with contextlib.suppress(psycopg.Error), self.bench.db() as conn:
            # Write the seed's pages out now rather than during the measurements.
            conn.execute("CHECKPOINT")
        _, step = seeding.bench_workflow()
        Steps.objects.filter(pk=step.pk).update(assignment_strategy=Steps.AssignmentStrategy.LOAD_BALANCED)
        self.bench.tts_request("POST", "/_control", {"roles": {step.role.name: list(range(1, users + 1))}})
        middle = Task.objects.filter(pk=(result.first_task_id + result.last_task_id) // 2).get()
        self.staff = {"Authorization": f"Bearer {mint_token(user_id=1, is_staff=True)}", "Host": "127.0.0.1"}
        self.assignee = {
            "Authorization": f"Bearer {mint_token(user_id=ASSIGNEE_ID, is_staff=False)}",
            "Host": "127.0.0.1",
        }
        since = (timezone.now() - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "tasks": size,
            "users": users,
            "seed_seconds": round(seconds, 1),
            "paths": {
                "task_list": "/tasks/api/tasks/?page_size=50",
                "task_list_status": "/tasks/api/tasks/?page_size=50&status=completed",
                "task_list_workflow": f"/tasks/api/tasks/?page_size=50&workflow_id={result.workflow_id}",
                "task_list_ticket": f"/tasks/api/tasks/?ticket_id={middle.ticket_id}",
                "own_tasks": "/tasks/api/tasks/?page_size=50",
                "task_detail": f"/tasks/api/tasks/{middle.pk}/",
                "ticket_list": "/tickets/api/tickets/?page_size=50",
                "ticket_detail": f"/tickets/api/tickets/{middle.ticket_id}/",
                "workflow_statistics": "/tasks/api/tasks/workflow_statistics/",
                "assignment_report": f"/workflow/api/roles/{step.role_id}/assignment_report/?since={since}",
                "next_assignees": f"/workflow/api/steps/{step.pk}/next_assignees/?count=5",
            },
        }

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
        path = first
        for _ in range(PAGES_DEEP - 1):
            status, body = self.get(port, path, self.staff)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            link = json.loads(body)["next"]
            parts = urlsplit(link)
            path = f"{parts.path}?{parts.query}"
        return path

    def measure(self, port: int, seeded: dict) -> dict:
        """Median per endpoint; requests go round the endpoints, so a passing disturbance hits them all."""
        from bench.run import BenchError

        paths = dict(seeded["paths"])
        paths["task_list_page_20"] = self.deep_page(port, paths["task_list"])
        seeded["paths"] = paths
        times: dict[str, list[float]] = {name: [] for name, _ in ENDPOINTS}
        for round_number in range(self.requests + 3):
            for name, _ in ENDPOINTS:
                headers = self.assignee if name == "own_tasks" else self.staff
                started = time.perf_counter()
                status, body = self.get(port, paths[name], headers)
                elapsed = (time.perf_counter() - started) * 1000
                if status != 200:
                    raise BenchError(f"{paths[name]} answered {status}: {body[:300]!r}")
                if round_number >= 3:  # warm-up: connections, caches
                    times[name].append(elapsed)
        medians = {name: round(statistics.median(values), 2) for name, values in times.items()}
        self.log(
            f"scale: {seeded['tasks']:,} tasks: "
            + ", ".join(f"{name} {value:.1f}" for name, value in medians.items())
            + " (median ms)"
        )
        return medians

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
            "server": "gunicorn, 2 sync workers, one request at a time",
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
