from collections.abc import Callable
from datetime import datetime
from functools import cached_property

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from task.models import AvailabilityChange, Task, TaskEvent, UserAvailability
from task.tts import MAX_USER_ID
from workflow_api import fields
from workflow_api.fields import DocumentedLengthCharField


class AssignedUserSerializer(serializers.Serializer):
    """One assignee of the task's current step, as in the specification's `users` list."""

    userID = serializers.IntegerField()  # noqa: N815  (payload key from the spec)
    status = serializers.ChoiceField(choices=Task.UserStatus.choices)
    assigned_on = serializers.CharField()
    role = serializers.CharField(allow_blank=True)
    username = serializers.CharField(required=False)
    email = serializers.CharField(required=False)


@extend_schema_field(AssignedUserSerializer(many=True))
class AssignmentsField(serializers.ReadOnlyField):
    """The task's current assignees in the spec's list shape (Task.users, read from the rows)."""


class TaskSerializer(serializers.ModelSerializer):
    """A task: its ticket, workflow, current step and that step's assignees."""

    ticket_id = serializers.IntegerField(read_only=True, help_text="The ticket's database id (tickets API).")
    ticket_number = serializers.CharField(
        source="ticket.ticket_number", read_only=True, help_text="The producer's ticket number."
    )
    workflow_id = serializers.IntegerField(read_only=True)
    current_step = serializers.IntegerField(source="current_step_id", read_only=True, allow_null=True)
    ticket_subject = serializers.CharField(source="ticket.subject", read_only=True)
    workflow_name = serializers.CharField(source="workflow.name", read_only=True)
    current_step_name = serializers.CharField(
        source="current_step.name", read_only=True, allow_null=True, default=None
    )
    current_step_role = serializers.CharField(
        source="current_step.role.name", read_only=True, allow_null=True, default=None
    )
    users = AssignmentsField(read_only=True)
    assigned_users_count = serializers.SerializerMethodField()
    workflow_version = serializers.IntegerField(
        source="workflow_version.number",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The number of the workflow version the task follows; null: the workflow as it is.",
    )
    is_overdue = serializers.BooleanField(
        read_only=True, help_text="Pending or in progress, and past `step_due_at`."
    )

    class Meta:
        model = Task
        fields = [
            "task_id",
            "ticket_id",
            "ticket_number",
            "workflow_id",
            "workflow_version",
            "current_step",
            "users",
            "status",
            "created_at",
            "updated_at",
            "fetched_at",
            "step_entered_at",
            "step_due_at",
            "is_overdue",
            "ticket_subject",
            "workflow_name",
            "current_step_name",
            "current_step_role",
            "assigned_users_count",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "step_entered_at": {
                "help_text": "When the task entered its current step; its deadline counts from here."
            },
            "step_due_at": {
                "help_text": "The current step's deadline (its SLA, or the workflow's for the ticket's "
                "priority), moved on by time on hold; null: no deadline."
            },
        }

    def get_assigned_users_count(self, task: Task) -> int:
        return len(task.current_assignments)

    def to_representation(self, task: Task) -> dict:
        """The declared fields' values, built directly for tasks read with selectors.with_names.

        What DRF's generic path returns (a test compares them), without its
        dispatch per field and object, which was most of a list page's cost.
        """
        if not hasattr(task, "workflow_name"):
            return super().to_representation(task)
        stamp = self._stamp
        users = task.users
        return {
            "task_id": task.task_id,
            "ticket_id": task.ticket_id,
            "ticket_number": task.ticket_number,
            "workflow_id": task.workflow_id,
            "workflow_version": task.workflow_version_number,
            "current_step": task.current_step_id,
            "users": users,
            "status": task.status,
            "created_at": stamp(task.created_at),
            "updated_at": stamp(task.updated_at),
            "fetched_at": stamp(task.fetched_at) if task.fetched_at is not None else None,
            "step_entered_at": stamp(task.step_entered_at) if task.step_entered_at is not None else None,
            "step_due_at": stamp(task.step_due_at) if task.step_due_at is not None else None,
            "is_overdue": task.is_overdue,
            "ticket_subject": task.ticket_subject,
            "workflow_name": task.workflow_name,
            "current_step_name": task.current_step_name,
            "current_step_role": task.current_step_role,
            "assigned_users_count": len(users),
        }

    @cached_property
    def _stamp(self) -> Callable[[datetime], str | None]:
        """Formats datetimes exactly as the declared fields do (settings, time zone).

        The current time zone is read once per serializer (for a list, once
        per page) rather than for every value, where it cost more than the
        formatting itself.
        """
        current = timezone.get_current_timezone() if settings.USE_TZ else None
        return serializers.DateTimeField(default_timezone=current).to_representation


class UserAssignmentSerializer(serializers.Serializer):
    userID = serializers.IntegerField(min_value=1, max_value=MAX_USER_ID)  # noqa: N815  (payload key from the spec)
    username = DocumentedLengthCharField(required=False, allow_blank=True, max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=Task.UserStatus.choices, required=False)
    role = DocumentedLengthCharField(required=False, allow_blank=True, max_length=100)


class UserStatusUpdateSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(min_value=1, max_value=MAX_USER_ID)
    status = serializers.ChoiceField(choices=Task.UserStatus.choices)


class CreateTaskForTicketSerializer(serializers.Serializer):
    ticket_id = serializers.IntegerField(min_value=1)


class WorkflowStatisticsSerializer(serializers.Serializer):
    workflow_id = serializers.IntegerField()
    workflow_name = serializers.CharField()
    total = serializers.IntegerField()
    by_status = serializers.DictField(
        child=serializers.IntegerField(), help_text="Task count per task status."
    )


class TaskStatisticsSerializer(serializers.Serializer):
    """Counts of tasks by status, and per workflow."""

    total_tasks = serializers.IntegerField()
    by_status = serializers.DictField(
        child=serializers.IntegerField(), help_text="Task count per task status."
    )
    by_workflow = WorkflowStatisticsSerializer(many=True)


# --- Availability ----------------------------------------------------------------

# The column is a PostgreSQL integer.
MAX_OPEN_ASSIGNMENTS = 2**31 - 1


class AvailabilitySerializer(serializers.Serializer):
    """A user's availability: whether they take new work, until when, and how much."""

    user_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=UserAvailability.Status.choices)
    effective_status = serializers.ChoiceField(
        choices=UserAvailability.Status.choices,
        help_text="The status in force now: once `until` has passed, the user is available.",
    )
    until = serializers.DateTimeField(allow_null=True)
    max_open_assignments = serializers.IntegerField(
        allow_null=True,
        help_text="Open assignments across all roles at which the user gets no more; null: no limit.",
    )
    open_assignments = serializers.IntegerField(
        help_text="Open assignments the user holds, across all roles."
    )
    updated_at = serializers.DateTimeField(
        allow_null=True, help_text="Null while the user has never been set."
    )


class StartedAssignmentSerializer(serializers.Serializer):
    task_id = serializers.IntegerField()
    step_id = serializers.IntegerField(allow_null=True)
    role = serializers.CharField()


class AvailabilityDetailSerializer(AvailabilitySerializer):
    started_assignments = StartedAssignmentSerializer(
        many=True,
        help_text="Assignments the user has started on open tasks: they stay with the user whatever happens.",
    )


class AvailabilityUpdateSerializer(serializers.Serializer):
    """A change of availability: only the fields sent change."""

    status = serializers.ChoiceField(choices=UserAvailability.Status.choices, required=False)
    until = fields.DateTimeField(
        required=False,
        allow_null=True,
        help_text="In the future; after it the user counts as available again.",
    )
    max_open_assignments = fields.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_OPEN_ASSIGNMENTS,
        help_text="Staff only. Null: no limit.",
    )

    def validate_until(self, until: datetime | None) -> datetime | None:
        if until is not None and until <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return until


class AvailabilityChangeSerializer(serializers.ModelSerializer):
    changes = serializers.DictField(
        child=serializers.ListField(),
        help_text='Per field, [before, after]: {"status": ["available", "away"]}.',
    )

    class Meta:
        model = AvailabilityChange
        fields = ["id", "user_id", "changed_by", "changed_at", "changes"]
        read_only_fields = fields


# --- History and reassignment ----------------------------------------------------


class TaskEventSerializer(serializers.Serializer):
    """One entry of a task's history."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=TaskEvent.Kind.choices)
    actor = serializers.CharField(help_text="A user id, `admin:<id>` for a local account, or `system`.")
    at = serializers.DateTimeField()
    step_id = serializers.IntegerField(allow_null=True)
    details = serializers.DictField(
        help_text=(
            "What happened. Decisions carry `decision`: the strategy, the candidates TTS returned "
            "(`candidates.user_ids`), the skipped users with their reasons, the rotation position "
            "or the loads compared, and who was chosen."
        )
    )


class ReassignSerializer(serializers.Serializer):
    from_user_id = serializers.IntegerField(min_value=1, max_value=MAX_USER_ID)
    to_user_id = fields.IntegerField(
        min_value=1,
        max_value=MAX_USER_ID,
        required=False,
        allow_null=True,
        help_text="A user of the step's role; without it, the step's strategy picks.",
    )

    def validate(self, attrs: dict) -> dict:
        if attrs.get("to_user_id") is not None and attrs["to_user_id"] == attrs["from_user_id"]:
            raise serializers.ValidationError({"to_user_id": ["Must differ from from_user_id."]})
        return attrs


# --- Lifecycle -------------------------------------------------------------------


class ReasonSerializer(serializers.Serializer):
    reason = DocumentedLengthCharField(max_length=500, help_text="Why; kept in the task's history.")


class ResumeSerializer(serializers.Serializer):
    reason = DocumentedLengthCharField(
        max_length=500, required=False, allow_blank=True, help_text="Kept in the task's history."
    )
