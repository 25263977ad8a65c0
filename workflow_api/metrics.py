"""Prometheus metrics: counted in each process, added up in the database, served at GET /metrics.

Counting (`count`, `observe`) only touches this process's memory: the
pipeline pays no round trip for it. A background thread per process adds
the counts to `MetricCounter` rows every METRICS_FLUSH_SECONDS, in one
statement, and once more when the process exits; so every process and
machine contributes to the same totals, whatever the broker. A process
killed outright loses at most its last interval's counts. Gauges (open
tasks, the oldest unallocated ticket) are read from the database when
scraped.

GET /metrics answers staff (a Django session) and `Authorization: Bearer
<METRICS_TOKEN>`. An API JWT is not accepted, staff or not: a scraper holds
a token of its own, which can be changed without touching the auth service.
"""

import atexit
import hmac
import logging
import os
import threading
import time
from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

PREFIX = "workflow_api_"
# Upper bounds (seconds) of the histograms' buckets.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HELP = {
    "tickets_received_total": ("counter", "Ticket messages stored (new tickets and updates)."),
    "allocations_total": (
        "counter",
        "Allocation tries by outcome: created, existing, retry, or the failure reason.",
    ),
    "allocation_seconds": ("histogram", "Time of one allocation try, TTS included."),
    "tts_requests_total": ("counter", "Requests to TTS by outcome: ok, unavailable, bad_response."),
    "tts_request_seconds": ("histogram", "Time of one request to TTS."),
    "escalations_total": (
        "counter",
        "Overdue steps escalated, by policy (notify, reassign, escalate_to_role) and outcome.",
    ),
}

# This process's counts not yet added to the database: (name, labels) -> amount.
_pending: dict[tuple[str, str], float] = defaultdict(float)
_lock = threading.Lock()
_flusher_pid: int | None = None


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))


def count(name: str, amount: float = 1, **labels: str) -> None:
    """Add to a counter (`name` without the prefix); memory only."""
    key = (name, _labels(labels))
    with _lock:
        _pending[key] += amount
    _ensure_flusher()


def observe(name: str, seconds: float, **labels: str) -> None:
    """Record one duration in a histogram (`name` without the prefix); memory only."""
    label_text = _labels(labels)
    bucket = next((bound for bound in BUCKETS if seconds <= bound), None)
    le = f'le="{bucket}"' if bucket is not None else 'le="+Inf"'
    with _lock:
        _pending[(f"{name}_bucket", ",".join(filter(None, [label_text, le])))] += 1
        _pending[(f"{name}_sum", label_text)] += seconds
        _pending[(f"{name}_count", label_text)] += 1
    _ensure_flusher()


def discard_pending() -> None:
    """Forget this process's counts not yet added (tests)."""
    with _lock:
        _pending.clear()


def _ensure_flusher() -> None:
    global _flusher_pid
    interval = settings.METRICS_FLUSH_SECONDS
    # Per process: a forked worker child does not inherit its parent's thread.
    if interval <= 0 or _flusher_pid == os.getpid():
        return
    with _lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
    threading.Thread(target=_flush_forever, args=(interval,), name="metrics-flusher", daemon=True).start()


def _flush_forever(interval: float) -> None:
    while True:
        time.sleep(interval)
        flush()
        # The thread's own connection: closed between flushes rather than held open.
        connections.close_all()


def flush() -> None:
    """Add this process's counts to the database in one statement; on failure keep them for the next try."""
    with _lock:
        taken = dict(_pending)
        _pending.clear()
    if not taken:
        return
    from workflow_api.models import MetricCounter

    table = MetricCounter._meta.db_table
    rows = ", ".join(["(%s, %s, %s)"] * len(taken))
    params = [value for (name, labels), amount in taken.items() for value in (name, labels, amount)]
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (name, labels, value) VALUES {rows} "
                f"ON CONFLICT (name, labels) DO UPDATE SET value = {table}.value + excluded.value",
                params,
            )
    except DatabaseError as exc:
        logger.warning(
            "Metrics: could not add %s counts to the database (%s); kept for the next try", len(taken), exc
        )
        with _lock:
            for key, amount in taken.items():
                _pending[key] += amount


@atexit.register
def _flush_at_exit() -> None:
    try:
        flush()
    except Exception as exc:  # noqa: BLE001  (interpreter shutdown: nothing left to raise to)
        logger.warning("Metrics: counts lost at exit: %s", exc)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Task statuses that are not final ("pending", "in_progress", "on_hold" in task.models.Task.Status).
OPEN_STATUSES = ("pending", "in_progress", "on_hold")


def _bearer_matches(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return False
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())


def _counter_lines() -> list[str]:
    from workflow_api.models import MetricCounter

    totals: dict[str, dict[str, float]] = defaultdict(dict)
    for name, labels, value in MetricCounter.objects.values_list("name", "labels", "value"):
        totals[name][labels] = value
    lines = []
    for metric, (kind, text) in HELP.items():
        lines += [f"# HELP {PREFIX}{metric} {text}", f"# TYPE {PREFIX}{metric} {kind}"]
        if kind == "counter":
            values = totals.get(metric) or {"": 0}
            lines += [_sample(metric, labels, value) for labels, value in sorted(values.items())]
            continue
        lines += _histogram_lines(metric, totals)
    return lines


def _histogram_lines(metric: str, totals: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    label_sets = sorted(totals.get(f"{metric}_count", {}).keys()) or [""]
    buckets = totals.get(f"{metric}_bucket", {})
    for labels in label_sets:
        running = 0.0
        for bound in [*BUCKETS, "+Inf"]:
            le = f'le="{bound}"'
            running += buckets.get(",".join(filter(None, [labels, le])), 0)
            lines.append(_sample(f"{metric}_bucket", ",".join(filter(None, [labels, le])), running))
        lines.append(_sample(f"{metric}_sum", labels, totals.get(f"{metric}_sum", {}).get(labels, 0)))
        lines.append(_sample(f"{metric}_count", labels, totals.get(f"{metric}_count", {}).get(labels, 0)))
    return lines


def _sample(name: str, labels: str, value: float) -> str:
    shown = int(value) if float(value).is_integer() else value
    return f"{PREFIX}{name}{{{labels}}} {shown}" if labels else f"{PREFIX}{name} {shown}"


def render(*, now: datetime) -> str:
    """The metrics as Prometheus text: this process's counts first added, then three queries."""
    from task.models import Task
    from tickets.models import WorkflowTicket

    flush()
    by_status = dict(
        Task.objects.filter(status__in=OPEN_STATUSES)
        .order_by()
        .values("status")
        .annotate(count=Count("task_id"))
        .values_list("status", "count")
    )
    oldest = WorkflowTicket.objects.filter(is_task_allocated=False).aggregate(oldest=Min("created_at"))[
        "oldest"
    ]
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    lines = _counter_lines()
    lines += [
        "# HELP workflow_api_open_tasks Tasks not completed or cancelled, by status.",
        "# TYPE workflow_api_open_tasks gauge",
        *(
            f'workflow_api_open_tasks{{status="{status}"}} {by_status.get(status, 0)}'
            for status in OPEN_STATUSES
        ),
        "# HELP workflow_api_oldest_unallocated_ticket_seconds Oldest ticket without a task, 0 if none.",
        "# TYPE workflow_api_oldest_unallocated_ticket_seconds gauge",
        f"workflow_api_oldest_unallocated_ticket_seconds {age:.3f}",
    ]
    return "\n".join(lines) + "\n"


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _bearer_matches(request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            response = HttpResponse("Authentication required.\n", status=401, content_type=CONTENT_TYPE)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        if not user.is_staff:
            return HttpResponse("Staff only.\n", status=403, content_type=CONTENT_TYPE)
    return HttpResponse(render(now=timezone.now()), content_type=CONTENT_TYPE)
