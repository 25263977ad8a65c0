from datetime import UTC, datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tickets.models import WorkflowTicket
from workflow.models import Steps, Workflows, WorkflowVersion


class AssignmentStatus(models.TextChoices):
    """An assignee's status (the spec's `users[].status`)."""

    ASSIGNED = "assigned", "Assigned"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    ON_HOLD = "on_hold", "On hold"


class Task(models.Model):
    """One ticket's journey through its workflow: the current step and who is assigned to it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        ON_HOLD = "on_hold", "On hold"
        CANCELLED = "cancelled", "Cancelled"

    UserStatus = AssignmentStatus

    # Tasks whose assignments count as their assignees' open work.
    ACTIVE_STATUSES = (Status.PENDING, Status.IN_PROGRESS)

    task_id = models.AutoField(primary_key=True)
    ticket = models.ForeignKey(WorkflowTicket, on_delete=models.PROTECT, related_name="tasks")
    workflow = models.ForeignKey(Workflows, on_delete=models.PROTECT, related_name="tasks")
    # The version the task started on: its steps, end logic and SLAs, whatever changed since.
    # Null for a workflow never versioned (configured outside admin and the API): it follows the live steps.
    workflow_version = models.ForeignKey(
        WorkflowVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="tasks"
    )
    current_step = models.ForeignKey(
        Steps, on_delete=models.PROTECT, related_name="tasks", null=True, blank=True
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    # Set while the task is on hold: resuming moves the step's deadline by the time held.
    held_at = models.DateTimeField(null=True, blank=True)
    # When the task entered its current step, and when that step is due (null: no deadline).
    step_entered_at = models.DateTimeField(null=True, blank=True)
    step_due_at = models.DateTimeField(null=True, blank=True)
    # When this entry into the step was escalated: the claim that makes escalation happen once
    # (task.services.task_escalate); cleared when the task enters another step.
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-task_id"]
        verbose_name = "task"
        verbose_name_plural = "tasks"
        constraints = [
            # At-least-once delivery must never give a ticket two tasks.
            models.UniqueConstraint(fields=["ticket"], name="one_task_per_ticket"),
        ]
        indexes = [
            # The list's filters, each in the list's order (newest first): a page
            # is an index range whatever the table's size.
            models.Index(fields=["status", "-task_id"], name="task_status_idx"),
            models.Index(fields=["workflow", "-task_id"], name="task_workflow_idx"),
            # `?overdue=true`: open tasks newest first, their deadline checked in the index. A
            # page reads past the open tasks not yet due, never the finished ones.
            models.Index(
                fields=["-task_id", "step_due_at"],
                condition=Q(status__in=["pending", "in_progress"]),
                name="task_open_due_idx",
            ),
            # The periodic check's question: open steps past their deadline, not escalated yet.
            models.Index(
                fields=["step_due_at"],
                condition=Q(escalated_at__isnull=True, status__in=["pending", "in_progress"]),
                name="task_due_not_escalated_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Task {self.task_id} for ticket {self.ticket_id}"

    @property
    def terms(self) -> "Workflows | WorkflowVersion":
        """Where the task's end logic and SLAs come from: its version, else the workflow as it is."""
        return self.workflow_version if self.workflow_version_id else self.workflow

    @property
    def is_overdue(self) -> bool:
        """Pending or in progress past its step's deadline (a held task's clock is stopped)."""
        return (
            self.status in self.ACTIVE_STATUSES
            and self.step_due_at is not None
            and self.step_due_at <= timezone.now()
        )

    @property
    def current_assignments(self) -> list["Assignment"]:
        """The assignments of the current step, oldest first (prefetched by the API as `current`)."""
        prefetched = getattr(self, "_prefetched_current_assignments", None)
        if prefetched is not None:
            return prefetched
        return list(self.assignments.filter(is_current=True).order_by("pk"))

    @property
    def users(self) -> list[dict]:
        """The spec's `users` list for the current step, read from the assignment rows.

        The API loads it for a whole page at once (task.selectors.load_users).
        """
        loaded = getattr(self, "_loaded_users", None)
        if loaded is not None:
            return loaded
        return [assignment.as_user_entry() for assignment in self.current_assignments]

    # The spec's methods. Reads work on this instance; writes go through the
    # services, which lock the row, and then refresh this instance.

    def get_assigned_user_ids(self) -> list[int]:
        return [assignment.user_id for assignment in self.current_assignments]

    def get_assigned_users_by_status(self, status: str) -> list[dict]:
        return [entry for entry in self.users if entry["status"] == status]

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
        for field in ("status", "current_step", "updated_at"):
            setattr(self, field, getattr(updated, field))
        self.__dict__.pop("_prefetched_current_assignments", None)
        self.__dict__.pop("_loaded_users", None)
        return self


class Assignment(models.Model):
    """One user assigned to one step of a task: the rows behind a task's `users`."""

    Status = AssignmentStatus

    class Origin(models.TextChoices):
        ROUND_ROBIN = "round_robin", "Round robin"
        LOAD_BALANCED = "load_balanced", "Load balanced"
        MANUAL = "manual", "Manual"
        REASSIGNED = "reassigned", "Reassigned"
        ESCALATED = "escalated", "Escalated"

    # An assignee's work that is not finished.
    OPEN_STATUSES = (Status.ASSIGNED, Status.IN_PROGRESS)

    id = models.BigAutoField(primary_key=True)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    # Kept when a step is deleted: the history still says who held the task.
    step = models.ForeignKey(Steps, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    user_id = models.BigIntegerField()
    role = models.CharField(max_length=100, blank=True)
    username = models.CharField(max_length=150, blank=True)
    email = models.EmailField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ASSIGNED)
    origin = models.CharField(max_length=20, choices=Origin.choices)
    # On the task's current step and not moved to someone else: part of the task's `users`.
    is_current = models.BooleanField(default=True)
    # Counts as the user's open work: current, assigned or in progress, on a
    # pending or in-progress task. Kept by task.services with AssigneeLoad.
    is_open = models.BooleanField(default=True)
    assigned_on = models.DateTimeField()
    status_updated_on = models.DateTimeField()

    class Meta:
        ordering = ["task_id", "id"]
        verbose_name = "assignment"
        verbose_name_plural = "assignments"
        constraints = [
            models.UniqueConstraint(
                fields=["task", "user_id"],
                condition=Q(is_current=True),
                name="one_current_assignment_per_user",
            ),
        ]
        indexes = [
            # A caller's tasks, newest first (the task list for non-staff callers).
            models.Index(fields=["user_id", "-task"], name="assignment_user_task_idx"),
            # A user's open assignments.
            models.Index(fields=["user_id"], condition=Q(is_open=True), name="assignment_user_open_idx"),
            # A role's assignments over time, and those completed (the assignment
            # report): index-only ranges, whatever the table's size.
            models.Index(
                fields=["role", "assigned_on"], include=["user_id", "id"], name="assignment_role_time_idx"
            ),
            models.Index(
                fields=["role", "status_updated_on"],
                include=["user_id", "id"],
                condition=Q(status="completed"),
                name="assignment_role_done_idx",
            ),
            models.Index(fields=["task"], condition=Q(is_current=True), name="assignment_current_idx"),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} on task {self.task_id} ({self.status})"

    # What a `users` entry is made of, in user_entry's order.
    USER_ENTRY_FIELDS = ("user_id", "status", "assigned_on", "role", "username", "email")

    def as_user_entry(self) -> dict:
        """This assignment in the spec's `users` list shape."""
        return user_entry(*(getattr(self, name) for name in self.USER_ENTRY_FIELDS))


def user_entry(
    user_id: int, status: str, assigned_on: datetime, role: str, username: str, email: str
) -> dict:
    """An assignment's values in the spec's `users` list shape."""
    entry = {
        "userID": user_id,
        "status": status,
        "assigned_on": assigned_on.astimezone(UTC).replace(microsecond=0).isoformat()[:-6] + "Z",
        "role": role,
    }
    if username:
        entry["username"] = username
    if email:
        entry["email"] = email
    return entry


class AssigneeLoad(models.Model):
    """How many open assignments a user holds in a role, kept in the transaction that changes them."""

    user_id = models.BigIntegerField()
    role = models.CharField(max_length=100)
    open_assignments = models.IntegerField(default=0)

    class Meta:
        verbose_name = "assignee load"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "role"], name="one_load_per_user_and_role"),
            models.CheckConstraint(condition=Q(open_assignments__gte=0), name="load_not_negative"),
        ]
        indexes = [models.Index(fields=["role", "user_id"], name="load_role_idx")]

    def __str__(self) -> str:
        return f"user {self.user_id} in {self.role}: {self.open_assignments} open"


class TaskStatusCount(models.Model):
    """How many tasks of a workflow are in a status, kept in the transaction that changes them.

    Triggers on the task table (PostgreSQL, migration 0003) add and subtract
    per statement, so every writer (services, admin, bulk loads) keeps it
    exact; `workflow_statistics` reads these rows instead of counting tasks.
    """

    workflow = models.ForeignKey(Workflows, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=Task.Status.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "task status count"
        constraints = [
            models.UniqueConstraint(fields=["workflow", "status"], name="one_count_per_workflow_and_status"),
        ]

    def __str__(self) -> str:
        return f"workflow {self.workflow_id} {self.status}: {self.count}"


class UserAvailability(models.Model):
    """Whether a user takes new work, and how much; users without a row are available without limit."""

    class Status(models.TextChoices):
        AVAILABLE = "available", "Available"
        AWAY = "away", "Away"
        UNAVAILABLE = "unavailable", "Unavailable"

    user_id = models.BigIntegerField(primary_key=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AVAILABLE)
    until = models.DateTimeField(
        null=True, blank=True, help_text="After this moment the user counts as available again."
    )
    max_open_assignments = models.PositiveIntegerField(
        null=True, blank=True, help_text="Open assignments across all roles at which the user gets no more."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user_id"]
        verbose_name = "user availability"
        verbose_name_plural = "user availability"

    def __str__(self) -> str:
        return f"user {self.user_id}: {self.status}"


class AvailabilityChange(models.Model):
    """One change of a user's availability: who made it, when, from what to what."""

    id = models.BigAutoField(primary_key=True)
    user_id = models.BigIntegerField()
    changed_by = models.CharField(max_length=32, help_text="A user id, or 'system'.")
    changed_at = models.DateTimeField()
    changes = models.JSONField(help_text='Per field, [before, after]: {"status": ["available", "away"]}.')

    class Meta:
        ordering = ["user_id", "id"]
        verbose_name = "availability change"
        indexes = [models.Index(fields=["user_id", "id"], name="availability_change_user_idx")]

    def __str__(self) -> str:
        return f"user {self.user_id} changed by {self.changed_by} at {self.changed_at:%Y-%m-%d %H:%M}"


class CandidateList(models.Model):
    """A list of user ids TTS returned for a role, stored once and named by its digest in decisions."""

    digest = models.CharField(max_length=40, primary_key=True)
    role = models.CharField(max_length=100)
    user_ids = models.JSONField()
    first_seen = models.DateTimeField()

    class Meta:
        verbose_name = "candidate list"

    def __str__(self) -> str:
        return f"{self.role}: {len(self.user_ids)} users"


class TaskEvent(models.Model):
    """One entry of a task's history: an assignment decision, or a change of the task or an assignee."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", "Assigned"
        REASSIGNED = "reassigned", "Reassigned"
        STATUS_CHANGED = "status_changed", "Status changed"
        MOVED = "moved", "Moved to the next step"
        COMPLETED = "completed", "Completed"
        HELD = "held", "Held"
        RESUMED = "resumed", "Resumed"
        CANCELLED = "cancelled", "Cancelled"
        ESCALATED = "escalated", "Escalated"

    SYSTEM = "system"

    id = models.BigAutoField(primary_key=True)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.CharField(max_length=32, help_text="A user id, or 'system'.")
    at = models.DateTimeField()
    step = models.ForeignKey(Steps, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    details = models.JSONField(default=dict)

    class Meta:
        ordering = ["task_id", "id"]
        verbose_name = "task event"
        indexes = [models.Index(fields=["task", "id"], name="task_event_task_idx")]

    def __str__(self) -> str:
        return f"task {self.task_id}: {self.kind} by {self.actor}"


class RoundRobinState(models.Model):
    """A role's place in its rotation, shared by every worker; `version` changes with every decision."""

    role_name = models.CharField(max_length=100, unique=True)
    next_index = models.PositiveIntegerField(default=0)
    # Decisions read the state, decide, and write only if no other decision
    # in the role came in between (task.assignment).
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "round-robin state"
        verbose_name_plural = "round-robin states"

    def __str__(self) -> str:
        return f"{self.role_name} -> {self.next_index}"
