from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


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


class Steps(models.Model):
    class AssignmentStrategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", "Round robin"
        LOAD_BALANCED = "load_balanced", "Load balanced"

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

    class Meta:
        ordering = ["workflow_id", "order"]
        verbose_name = "step"
        verbose_name_plural = "steps"
        constraints = [
            models.UniqueConstraint(fields=["workflow", "order"], name="unique_step_order_per_workflow"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} #{self.order}: {self.name}"

    @property
    def assignee_count(self) -> int:
        """How many users a decision for this step assigns (at most)."""
        return self.max_assignees or settings.ROUND_ROBIN_MAX_ASSIGNMENTS


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
