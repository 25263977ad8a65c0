from rest_framework import serializers

from workflow.models import Roles, Steps, Workflows
from workflow_api.fields import ModelSerializer


class RoleSerializer(ModelSerializer):
    class Meta:
        model = Roles
        fields = ["role_id", "name", "description", "created_at", "updated_at"]
        read_only_fields = ["role_id", "created_at", "updated_at"]


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
        ]
        read_only_fields = ["step_id"]

    def validate_workflow(self, workflow: Workflows) -> Workflows:
        # Moving a step could leave its deployed workflow without steps; create a new one instead.
        if self.instance is not None and workflow.pk != self.instance.workflow_id:
            raise serializers.ValidationError("A step cannot move to another workflow.")
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
            "steps",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["workflow_id", "steps", "created_at", "updated_at"]

    def validate(self, attrs: dict) -> dict:
        status = attrs.get("status", self.instance.status if self.instance else None)
        if status == Workflows.Status.DEPLOYED and (
            self.instance is None or not self.instance.steps.exists()
        ):
            raise serializers.ValidationError(
                {"status": ["A workflow with no steps cannot be deployed; add steps first."]}
            )
        return attrs
