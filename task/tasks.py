"""Celery entry points of the task app: thin wrappers around task.services."""

from celery import shared_task
from django.db import OperationalError

from task import services


@shared_task(
    name="task.tasks.reassign_from_unavailable_user",
    autoretry_for=(OperationalError,),
    max_retries=5,
    retry_backoff=True,
)
def reassign_from_unavailable_user(user_id: int) -> dict:
    """Move a user's not-started assignments to others once they became unavailable. Idempotent."""
    return services.task_reassign_from_unavailable_user(user_id=user_id)


@shared_task(
    name="task.tasks.escalate_overdue_tasks",
    autoretry_for=(OperationalError,),
    max_retries=3,
    retry_backoff=True,
)
def escalate_overdue_tasks() -> int:
    """Periodic: escalate tasks past their step's deadline. Idempotent: each entry into a step once."""
    return services.task_escalate_overdue()
