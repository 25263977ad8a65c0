from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Roles(models.Model):
    role_id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
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
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    department = models.CharField(max_length=150)
    category = models.CharField(max_length=150)
    sub_category = models.CharField(max_length=150, blank=True)
    is_published = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    end_logic = models.CharField(max_length=20, choices=EndLogic.choices, default=EndLogic.NONE, blank=True)
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
    workflow = models.ForeignKey(Workflows, on_delete=models.CASCADE, related_name="steps")
    role = models.ForeignKey(Roles, on_delete=models.PROTECT, related_name="steps")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    instruction = models.TextField(blank=True)
    order = models.PositiveIntegerField(default=1)
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
