from django.db import models


class WorkflowTicket(models.Model):
    """A ticket as received from a producer service, with its allocation outcome."""

    class AllocationError(models.TextChoices):
        NONE = "", "None"
        NO_WORKFLOW = "no_workflow", "No matching workflow"
        NO_STEPS = "no_steps", "Workflow has no steps"
        NO_USERS = "no_users", "No users for role"
        NO_AVAILABLE_USERS = "no_available_users", "Waiting: nobody in the role is available"
        TTS_UNAVAILABLE = "tts_unavailable", "TTS service unavailable"
        TTS_BAD_RESPONSE = "tts_bad_response", "TTS service answered malformed data"
        ATTEMPTS_EXHAUSTED = "attempts_exhausted", "Gave up after too many attempts"
        INTERNAL_ERROR = "internal_error", "Unexpected error (see the worker's log)"

    # Failures that may heal by themselves; the sweeper retries only these.
    TRANSIENT_ERRORS = (AllocationError.TTS_UNAVAILABLE,)
    # Not a failure: the ticket waits for a user of its role to become
    # available, and is allocated when one does (no attempt is counted).
    WAITING = AllocationError.NO_AVAILABLE_USERS

    ticket_number = models.CharField(max_length=64, unique=True)
    original_ticket_id = models.BigIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    department = models.CharField(max_length=150, blank=True)
    category = models.CharField(max_length=150, blank=True)
    sub_category = models.CharField(max_length=150, blank=True)
    priority = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=50, blank=True)
    ticket_data = models.JSONField(default=dict)

    is_task_allocated = models.BooleanField(default=False)
    allocation_error = models.CharField(
        max_length=32, choices=AllocationError.choices, default=AllocationError.NONE, blank=True
    )
    allocation_error_detail = models.TextField(blank=True)
    allocation_attempts = models.PositiveIntegerField(default=0)
    last_allocation_attempt_at = models.DateTimeField(null=True, blank=True)

    fetched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "ticket"
        verbose_name_plural = "tickets"
        indexes = [
            # The list's order: a page (and a cursor's next page) is an index range.
            models.Index(fields=["-created_at", "-id"], name="ticket_list_idx"),
            models.Index(fields=["is_task_allocated", "allocation_error"], name="ticket_pending_idx"),
            models.Index(
                fields=["created_at"],
                condition=models.Q(is_task_allocated=False, allocation_error="no_available_users"),
                name="ticket_waiting_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_number}: {self.subject}"

    @property
    def allocation_failure_reason(self) -> str:
        if self.is_task_allocated or not self.allocation_error:
            return ""
        label = self.AllocationError(self.allocation_error).label
        return f"{label}: {self.allocation_error_detail}" if self.allocation_error_detail else label


class RedeliveredMessage(models.Model):
    """A ticket message the broker handed out again because no worker finished it.

    Counted so that a message which kills or hangs its worker every time is
    dropped after a bounded number of deliveries instead of circulating forever.
    """

    message_id = models.CharField(max_length=255, unique=True)
    task_name = models.CharField(max_length=200)
    # Only a plausible ticket number is kept: a malformed message may carry anything.
    ticket_number = models.CharField(max_length=64, blank=True)
    redeliveries = models.PositiveIntegerField(default=0)
    dropped = models.BooleanField(default=False)
    first_redelivered_at = models.DateTimeField(auto_now_add=True)
    last_redelivered_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_redelivered_at"]
        verbose_name = "redelivered message"
        verbose_name_plural = "redelivered messages"

    def __str__(self) -> str:
        return f"{self.task_name} {self.message_id} ({self.redeliveries} redeliveries)"
