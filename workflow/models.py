from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

# Deadlines beyond this are a typo, and would overflow date arithmetic long before the limit of a timedelta.
MAX_SLA = timedelta(days=3650)


def validate_sla(value: timedelta) -> None:
    """An SLA is a positive duration of at most ten years."""
    if value <= timedelta(0):
        raise ValidationError("Must be a positive duration.", code="not_positive")
    if value > MAX_SLA:
        raise ValidationError("Must be at most 3650 days.", code="too_long")


def sla_field(help_text: str) -> models.DurationField:
    return models.DurationField(null=True, blank=True, validators=[validate_sla], help_text=help_text)


class Priority(models.TextChoices):
    """A ticket's priority as deadlines know it."""

    URGENT = "urgent", "Urgent"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


# Ticket priorities as producers write them, lower-cased; anything else takes the workflow's default.
PRIORITY_BY_TICKET_PRIORITY = {
    "critical": Priority.URGENT,
    "urgent": Priority.URGENT,
    "high": Priority.HIGH,
    "medium": Priority.MEDIUM,
    "low": Priority.LOW,
}


class Roles(models.Model):
    role_id = models.AutoField(primary_key=True)
    name = models.CharField(
        max_length=100,
        unique=True,
        help_text=(
            "Must equal the role's name in TTS exactly, capitals included: allocation asks TTS for "
            "the users of the role by this name, and TTS answers an unknown name with no users."
        ),
    )
    description = models.TextField(blank=True, help_text="For people only; not used for routing.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "role"
        verbose_name_plural = "roles"

    def __str__(self) -> str:
        return self.name


def priority_of(ticket_priority: str | None, *, default: str) -> str:
    """The deadline priority of a ticket's priority, case-insensitive; unknown or missing: `default`."""
    return PRIORITY_BY_TICKET_PRIORITY.get((ticket_priority or "").strip().lower(), default)


class Workflows(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        DEPLOYED = "deployed", "Deployed"
        PAUSED = "paused", "Paused"

    class EndLogic(models.TextChoices):
        NONE = "", "None"
        NOTIFICATION = "notification", "Notification"

    workflow_id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=200, unique=True, help_text="Unique; shown to operators.")
    description = models.TextField(blank=True, help_text="For people only; not used for routing.")
    department = models.CharField(
        max_length=150,
        help_text="Matched exactly against the ticket's department: same spelling, capitals and spaces.",
    )
    category = models.CharField(
        max_length=150,
        help_text="Matched exactly against the ticket's category: same spelling, capitals and spaces.",
    )
    sub_category = models.CharField(
        max_length=150,
        blank=True,
        help_text=(
            "Matched exactly against the ticket's sub category. Blank: the catch-all of its department "
            "and category, taking their tickets that no workflow matches exactly."
        ),
    )
    is_published = models.BooleanField(
        default=False,
        help_text="A workflow receives tickets only when it is both published and deployed (live).",
    )
    status = models.CharField(
        max_length=20,
        choices=Status.choices,
        default=Status.DRAFT,
        help_text=(
            "Deployed and published: live, new tickets of its route get a task. Draft or paused: "
            "receives no new tickets; its tasks go on. Deploying needs at least one step."
        ),
    )
    end_logic = models.CharField(
        max_length=20,
        choices=EndLogic.choices,
        default=EndLogic.NONE,
        blank=True,
        help_text="Notification: when a task completes, a task_completed message goes to NOTIFICATION_TASKS.",
    )
    urgent_sla = sla_field("Deadline of each step for urgent (and critical) tickets; blank: none.")
    high_sla = sla_field("Deadline of each step for high-priority tickets; blank: none.")
    medium_sla = sla_field("Deadline of each step for medium-priority tickets; blank: none.")
    low_sla = sla_field("Deadline of each step for low-priority tickets; blank: none.")
    default_priority = models.CharField(
        max_length=10,
        choices=Priority.choices,
        default=Priority.MEDIUM,
        help_text="The priority of tickets whose priority is missing or unknown.",
    )
    # The version new tickets take (workflow.services.workflow_publish_version); null until deployed.
    live_version = models.ForeignKey(
        "WorkflowVersion", on_delete=models.SET_NULL, null=True, blank=True, editable=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workflow_id"]
        verbose_name = "workflow"
        verbose_name_plural = "workflows"
        indexes = [
            models.Index(
                fields=["department", "category", "sub_category"],
                name="workflow_match_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    # "A deployed workflow has steps" is checked where the steps being
    # submitted are visible: the admin's inline formset and the API serializer.

    SLA_FIELDS = ("urgent_sla", "high_sla", "medium_sla", "low_sla")  # most urgent first

    def clean(self) -> None:
        """SLAs, where set, do not grow shorter as priority falls: urgent <= high <= medium <= low.

        Admin (through the model form) and the API (WorkflowSerializer) both call it.
        """
        errors: dict[str, list[str]] = {}
        tighter: tuple[str, timedelta] | None = None
        for name in self.SLA_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, timedelta):
                continue
            if tighter is not None and value < tighter[1]:
                errors[name] = [f"Must be at least {tighter[0]} ({tighter[1]})."]
            else:
                tighter = (name, value)
        if errors:
            raise ValidationError(errors)

    def priority_of(self, ticket_priority: str | None) -> str:
        return priority_of(ticket_priority, default=self.default_priority)

    def sla_for(self, ticket_priority: str | None) -> timedelta | None:
        return getattr(self, f"{self.priority_of(ticket_priority)}_sla")


class LiveStepManager(models.Manager):
    """Steps of the workflow as it is now; retired steps stay only for the versions that hold them."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(retired_at__isnull=True)


class Steps(models.Model):
    class AssignmentStrategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", "Round robin"
        LOAD_BALANCED = "load_balanced", "Load balanced"

    class Escalation(models.TextChoices):
        NONE = "", "None"
        NOTIFY = "notify", "Notify"
        REASSIGN = "reassign", "Reassign"
        ESCALATE_TO_ROLE = "escalate_to_role", "Escalate to role"

    class CompletionPolicy(models.TextChoices):
        MANUAL = "manual", "Manual"
        ANY = "any", "Any assignee"
        ALL = "all", "All assignees"

    step_id = models.AutoField(primary_key=True)
    workflow = models.ForeignKey(
        Workflows,
        on_delete=models.CASCADE,
        related_name="steps",
        help_text="Fixed once the step exists: create a new step in the other workflow instead.",
    )
    role = models.ForeignKey(
        Roles,
        on_delete=models.PROTECT,
        related_name="steps",
        help_text="Whose users TTS lists for this step; the step's users are picked among them.",
    )
    name = models.CharField(max_length=200, help_text="Shown to assignees as their task's current step.")
    description = models.TextField(blank=True, help_text="What the step is for.")
    instruction = models.TextField(blank=True, help_text="What an assignee does at this step.")
    order = models.PositiveIntegerField(
        default=1,
        help_text=(
            "Steps run from the lowest order up; a new task starts at the lowest. Unique within the workflow."
        ),
    )
    assignment_strategy = models.CharField(
        max_length=20,
        choices=AssignmentStrategy.choices,
        default=AssignmentStrategy.ROUND_ROBIN,
        help_text=(
            "Round robin: the role's users take turns in the order TTS lists them. "
            "Load balanced: the users with the fewest open assignments in this role first, "
            "ties taking turns."
        ),
    )
    max_assignees = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="How many users this step is assigned to; blank means ROUND_ROBIN_MAX_ASSIGNMENTS.",
    )
    sla = sla_field("This step's deadline, whatever the ticket's priority; blank: the workflow's SLA.")
    escalation = models.CharField(
        max_length=20,
        choices=Escalation.choices,
        default=Escalation.NONE,
        blank=True,
        help_text=(
            "What happens once when a task is overdue on this step: notify, move not-started "
            "assignees to others, or add users of the escalation role."
        ),
    )
    escalation_role = models.ForeignKey(
        Roles,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="escalation_steps",
        help_text="The role whose users are added by escalate_to_role.",
    )
    completion_policy = models.CharField(
        max_length=10,
        choices=CompletionPolicy.choices,
        default=CompletionPolicy.MANUAL,
        help_text=(
            "Manual: staff move the task on. Any: the first assignee to complete moves it on. "
            "All: it moves on when every assignee of the step has completed."
        ),
    )

    # Set when an edit or a deletion replaced a step that a workflow version holds: tasks on
    # that version keep following it, nothing else sees it.
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)

    all_objects = models.Manager()
    objects = LiveStepManager()

    class Meta:
        ordering = ["workflow_id", "order"]
        verbose_name = "step"
        verbose_name_plural = "steps"
        default_manager_name = "objects"
        base_manager_name = "all_objects"
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "order"],
                condition=models.Q(retired_at__isnull=True),
                name="unique_step_order_per_workflow",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} #{self.order}: {self.name}"

    def clean(self) -> None:
        """escalate_to_role names the role to escalate to. Admin and the API (StepSerializer) call it."""
        if self.escalation == self.Escalation.ESCALATE_TO_ROLE and self.escalation_role_id is None:
            raise ValidationError({"escalation_role": ["Required when escalation is escalate_to_role."]})

    def sla_for(
        self, *, workflow: "Workflows | WorkflowVersion", ticket_priority: str | None
    ) -> timedelta | None:
        """How long a task may stay on this step: the step's own SLA, else the workflow's for the priority."""
        return self.sla or workflow.sla_for(ticket_priority)

    def deadline(
        self, *, workflow: "Workflows | WorkflowVersion", ticket_priority: str | None, entered_at: datetime
    ) -> datetime | None:
        """When a task entering this step at `entered_at` is due (calendar time); None: no deadline."""
        sla = self.sla_for(workflow=workflow, ticket_priority=ticket_priority)
        return entered_at + sla if sla else None

    @property
    def assignee_count(self) -> int:
        """How many users a decision for this step assigns (at most)."""
        return self.max_assignees or settings.ROUND_ROBIN_MAX_ASSIGNMENTS


class WorkflowVersion(models.Model):
    """A deployed workflow as tasks follow it: route, end logic, SLAs and steps when it was made.

    Made by workflow.services on every change to a deployed workflow or its
    steps. A task keeps the version it started on: its moves, completion and
    deadlines follow that version's steps and terms whatever changed since.
    """

    VERSIONED_FIELDS = (
        "department",
        "category",
        "sub_category",
        "end_logic",
        "urgent_sla",
        "high_sla",
        "medium_sla",
        "low_sla",
        "default_priority",
    )

    id = models.BigAutoField(primary_key=True)
    workflow = models.ForeignKey(Workflows, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    department = models.CharField(max_length=150)
    category = models.CharField(max_length=150)
    sub_category = models.CharField(max_length=150, blank=True)
    end_logic = models.CharField(max_length=20, choices=Workflows.EndLogic.choices, blank=True)
    urgent_sla = models.DurationField(null=True, blank=True)
    high_sla = models.DurationField(null=True, blank=True)
    medium_sla = models.DurationField(null=True, blank=True)
    low_sla = models.DurationField(null=True, blank=True)
    default_priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    steps = models.ManyToManyField(Steps, related_name="versions")

    class Meta:
        ordering = ["workflow_id", "number"]
        verbose_name = "workflow version"
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="one_version_number_per_workflow"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} v{self.number}"

    def priority_of(self, ticket_priority: str | None) -> str:
        return priority_of(ticket_priority, default=self.default_priority)

    def sla_for(self, ticket_priority: str | None) -> timedelta | None:
        return getattr(self, f"{self.priority_of(ticket_priority)}_sla")

    def step_after(self, order: int) -> Steps | None:
        """This version's next step after `order` (retired steps included: they are this version's)."""
        return (
            Steps.all_objects.filter(versions=self, order__gt=order)
            .select_related("role")
            .order_by("order")
            .first()
        )


class RoutingVersion(models.Model):
    """One row whose `version` changes with every write to roles, workflows or steps.

    Set by PostgreSQL triggers (migration 0002), so that no write path can miss
    it: workers cache ticket routes per process and trust a cached route only
    while this value is the one it was read at. Values are random, never
    counted up: a rolled-back change cannot make an old value current again.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField()

    class Meta:
        verbose_name = "routing version"

    def __str__(self) -> str:
        return f"routing version {self.version}"
