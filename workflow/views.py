from rest_framework import viewsets

from workflow import services
from workflow.models import Roles, Steps, Workflows
from workflow.serializers import RoleSerializer, StepSerializer, WorkflowSerializer


class RoleViewSet(viewsets.ModelViewSet):
    queryset = Roles.objects.all()
    serializer_class = RoleSerializer
    filterset_fields = ["name"]


class WorkflowViewSet(viewsets.ModelViewSet):
    queryset = Workflows.objects.prefetch_related("steps__role")
    serializer_class = WorkflowSerializer
    filterset_fields = ["department", "category", "sub_category", "status", "is_published"]


class StepViewSet(viewsets.ModelViewSet):
    queryset = Steps.objects.select_related("role")
    serializer_class = StepSerializer
    filterset_fields = ["workflow", "role"]

    def perform_destroy(self, instance: Steps) -> None:
        services.step_delete(step=instance)
