"""GET /metrics: Prometheus text for staff (a Django session) or `Authorization: Bearer <METRICS_TOKEN>`.

The figures are read from the database at scrape time, so every process and
machine reports the same ones and keeping them costs the pipeline nothing.
An API JWT is not accepted, staff or not: a scraper holds a token of its own,
which can be changed without touching the auth service.
"""

import hmac
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from task.models import Task
from tickets.models import WorkflowTicket

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPEN_STATUSES = (Task.Status.PENDING, Task.Status.IN_PROGRESS, Task.Status.ON_HOLD)


def _bearer_matches(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return False
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())


def render(*, now: datetime) -> str:
    """The metrics as Prometheus text (two queries)."""
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
    lines = [
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
