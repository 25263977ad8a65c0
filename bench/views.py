"""A floor for the task list: the same page of tasks with their users, from values(), without DRF.

No authentication, pagination envelope, serializer or content negotiation:
what serving the page costs with plain Django, to compare the API with.
"""

from django.http import HttpRequest, JsonResponse

from task.models import Assignment, Task

TASK_FIELDS = (
    "task_id",
    "ticket_id",
    "workflow_id",
    "current_step_id",
    "status",
    "created_at",
    "updated_at",
    "fetched_at",
    "ticket__subject",
    "workflow__name",
    "current_step__name",
    "current_step__role__name",
)
USER_FIELDS = ("task_id", "user_id", "status", "assigned_on", "role", "username", "email")


def task_page_floor(request: HttpRequest) -> JsonResponse:
    size = int(request.GET.get("page_size", 50))
    tasks = list(Task.objects.order_by("-task_id").values(*TASK_FIELDS)[:size])
    users: dict[int, list[dict]] = {task["task_id"]: [] for task in tasks}
    rows = Assignment.objects.filter(task_id__in=users, is_current=True).order_by("pk").values(*USER_FIELDS)
    for row in rows:
        users[row.pop("task_id")].append(row)
    for task in tasks:
        task["users"] = users[task["task_id"]]
    return JsonResponse({"results": tasks})
