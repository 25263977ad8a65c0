from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from task.models import Task
from task.tts import MAX_USER_ID
from workflow_api.fields import DocumentedLengthCharField


class AssignedUserSerializer(serializers.Serializer):
    """One entry of a task's `users` list (the spec's assignment object); documents the shape only."""

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
    ticket_id = serializers.IntegerField(read_only=True)
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

    class Meta:
        model = Task
        fields = [
            "task_id",
            "ticket_id",
            "workflow_id",
            "current_step",
            "users",
            "status",
            "created_at",
            "updated_at",
            "fetched_at",
            "ticket_subject",
            "workflow_name",
            "current_step_name",
            "current_step_role",
            "assigned_users_count",
        ]
        read_only_fields = fields

    def get_assigned_users_count(self, task: Task) -> int:
        return len(task.current_assignments)


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
    """The shape of `task.selectors.task_statistics()`."""

    total_tasks = serializers.IntegerField()
    by_status = serializers.DictField(
        child=serializers.IntegerField(), help_text="Task count per task status."
    )
    by_workflow = WorkflowStatisticsSerializer(many=True)
