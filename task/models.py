from django.db import models

from tickets.models import WorkflowTicket
from workflow.models import Steps, Workflows


class Task(models.Model):
    """One ticket's journey through its workflow: the current step and who is assigned to it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        ON_HOLD = "on_hold", "On hold"
        CANCELLED = "cancelled", "Cancelled"

    class UserStatus(models.TextChoices):
        ASSIGNED = "assigned", "Assigned"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        ON_HOLD = "on_hold", "On hold"

    task_id = models.AutoField(primary_key=True)
    ticket = models.ForeignKey(WorkflowTicket, on_delete=models.PROTECT, related_name="tasks")
    workflow = models.ForeignKey(Workflows, on_delete=models.PROTECT, related_name="tasks")
    current_step = models.ForeignKey(
        Steps, on_delete=models.PROTECT, related_name="tasks", null=True, blank=True
    )
    users = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-task_id"]
        verbose_name = "task"
        verbose_name_plural = "tasks"
        constraints = [
            # At-least-once delivery must never give a ticket two tasks.
            models.UniqueConstraint(fields=["ticket"], name="one_task_per_ticket"),
        ]
        indexes = [models.Index(fields=["status"], name="task_status_idx")]

    def __str__(self) -> str:
        return f"Task {self.task_id} for ticket {self.ticket_id}"

    # The spec's methods. Reads work on this instance; writes go through the
    # services, which lock the row, and then refresh this instance.

    def get_assigned_user_ids(self) -> list[int]:
        return [entry["userID"] for entry in self.users]

    def get_assigned_users_by_status(self, status: str) -> list[dict]:
        return [entry for entry in self.users if entry.get("status") == status]

    def update_user_status(self, user_id: int, new_status: str) -> "Task":
        from task import services

        return self._refreshed_from(
            services.task_update_user_status(task_id=self.pk, user_id=user_id, new_status=new_status)
        )

    def add_user_assignment(self, user_data: dict) -> "Task":
        from task import services

        return self._refreshed_from(services.task_assign_user(task_id=self.pk, user_data=user_data))

    def mark_as_completed(self) -> "Task":
        from task import services

        return self._refreshed_from(services.task_complete(task_id=self.pk))

    def move_to_next_step(self) -> "Task":
        from task import services

        return self._refreshed_from(services.task_move_to_next_step(task_id=self.pk))

    def _refreshed_from(self, updated: "Task") -> "Task":
        for field in ("users", "status", "current_step", "updated_at"):
            setattr(self, field, getattr(updated, field))
        return self


class RoundRobinState(models.Model):
    """Where the next round-robin assignment for a role starts; shared by every worker."""

    role_name = models.CharField(max_length=100, unique=True)
    next_index = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "round-robin state"
        verbose_name_plural = "round-robin states"

    def __str__(self) -> str:
        return f"{self.role_name} -> {self.next_index}"
