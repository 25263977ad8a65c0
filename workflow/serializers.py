import copy

from django.core.exceptions import ValidationError as ModelValidationError
from django.utils import timezone
from rest_framework import serializers

from workflow import services
from workflow.models import Roles, Steps, Workflows
from workflow_api import errors
from workflow_api.fields import ModelSerializer


class RoleSerializer(ModelSerializer):
    class Meta:
        model = Roles
        fields = ["role_id", "name", "description", "created_at", "updated_at"]
        read_only_fields = ["role_id", "created_at", "updated_at"]


def _clean_as_model(serializer: serializers.ModelSerializer, attrs: dict) -> None:
    """Run the model's own clean() on the object as it would be saved: one rule for admin and the API."""
    instance = copy.copy(serializer.instance) if serializer.instance is not None else serializer.Meta.model()
    for name, value in attrs.items():
        setattr(instance, name, value)
    try:
        instance.clean()
    except ModelValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from None


class StepSerializer(ModelSerializer):
    role_name = serializers.CharField(source="role.name", read_only=True)

    class Meta:
        model = Steps
        fields = [
            "step_id",
            "workflow",
            "role",
            "role_name",
            "name",
            "description",
            "instruction",
            "order",
            "assignment_strategy",
            "max_assignees",
            "sla",
            "escalation",
            "escalation_role",
            "completion_policy",
        ]
        read_only_fields = ["step_id"]

    def validate(self, attrs: dict) -> dict:
        workflow = attrs.get("workflow", self.instance.workflow if self.instance else None)
        order = attrs.get("order", self.instance.order if self.instance else 1)
        taken = Steps.objects.filter(workflow=workflow, order=order)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError({"order": ["The workflow has a step with this order already."]})
        _clean_as_model(self, attrs)
        return attrs

    def validate_workflow(self, workflow: Workflows) -> Workflows:
        try:
            services.step_check_workflow(step=self.instance, workflow_id=workflow.pk)
        except errors.InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from exc
        return workflow


class WorkflowSerializer(ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)

    class Meta:
        model = Workflows
        fields = [
            "workflow_id",
            "name",
            "description",
            "department",
            "category",
            "sub_category",
            "is_published",
            "status",
            "end_logic",
            "urgent_sla",
            "high_sla",
            "medium_sla",
            "low_sla",
            "default_priority",
            "steps",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["workflow_id", "steps", "created_at", "updated_at"]

    def validate(self, attrs: dict) -> dict:
        status = attrs.get("status", self.instance.status if self.instance else None)
        # Steps are added through their own endpoint, after the workflow exists.
        step_count = self.instance.steps.count() if self.instance is not None else 0
        try:
            services.workflow_check_deployable(status=status, step_count=step_count)
        except errors.InvalidInput as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from exc
        _clean_as_model(self, attrs)
        return attrs


# --- Staff answers about who gets the work (task.selectors) -----------------------


class NextAssigneesQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(
        min_value=1, max_value=100, default=10, help_text="How many decisions to look ahead."
    )


class NextAssigneesEntrySerializer(serializers.Serializer):
    position = serializers.IntegerField()
    user_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="Empty: nobody would be eligible; the ticket would wait."
    )


class NextAssigneesSerializer(serializers.Serializer):
    step_id = serializers.IntegerField()
    strategy = serializers.ChoiceField(choices=Steps.AssignmentStrategy.choices)
    next = NextAssigneesEntrySerializer(many=True)


class AssignmentReportQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Start of the window (included).")
    until = serializers.DateTimeField(required=False, help_text="End of the window (excluded); default: now.")

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("until", timezone.now())
        if attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["Must be after since."]})
        return attrs


class AssignmentReportUserSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    assigned = serializers.IntegerField(help_text="Assignments in the role received in the window.")
    open = serializers.IntegerField(help_text="Open assignments in the role now.")
    completed = serializers.IntegerField(help_text="Assignments in the role completed in the window.")


class AssignmentReportSerializer(serializers.Serializer):
    role = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    users = AssignmentReportUserSerializer(many=True)
    spread = serializers.IntegerField(help_text="Most minus fewest assignments received, among the users.")


# --- Routing tester ----------------------------------------------------------------


class WorkflowMatchQuerySerializer(serializers.Serializer):
    department = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The ticket's department."
    )
    category = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The ticket's category."
    )
    sub_category = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="The ticket's sub category; blank for none.",
    )


class WorkflowMatchSerializer(serializers.Serializer):
    match = serializers.ChoiceField(
        choices=["exact", "fallback", "none"],
        help_text=(
            "exact: a live workflow with the ticket's department, category and sub category; fallback: "
            "none has its sub category, so the department and category's catch-all (blank sub category) "
            "or else their oldest live workflow; none: the ticket would fail with no_workflow."
        ),
    )
    workflow = WorkflowSerializer(allow_null=True, help_text="The workflow the ticket would get, or null.")
