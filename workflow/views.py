from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets

from workflow import services
from workflow.models import Roles, Steps, Workflows
from workflow.serializers import RoleSerializer, StepSerializer, WorkflowSerializer
from workflow_api import filters
from workflow_api.permissions import IsStaffOrReadOnly
from workflow_api.schema import ERROR

# Configuration is readable by every authenticated caller (assignees see which
# workflow and step their task is in) and changed only by staff.


@extend_schema_view(
    destroy=extend_schema(
        responses={204: None, 409: OpenApiResponse(ERROR, description="The role is used by steps.")}
    ),
)
class RoleViewSet(viewsets.ModelViewSet):
    queryset = Roles.objects.all()
    serializer_class = RoleSerializer
    filterset_fields = ["name"]
    permission_classes = [IsStaffOrReadOnly]


class WorkflowFilter(filters.FilterSet):
    class Meta:
        model = Workflows
        fields = ["department", "category", "sub_category", "status", "is_published"]


@extend_schema_view(
    destroy=extend_schema(
        responses={204: None, 409: OpenApiResponse(ERROR, description="The workflow has tasks.")}
    ),
)
class WorkflowViewSet(viewsets.ModelViewSet):
    queryset = Workflows.objects.prefetch_related("steps__role")
    serializer_class = WorkflowSerializer
    filterset_class = WorkflowFilter
    permission_classes = [IsStaffOrReadOnly]


@extend_schema_view(
    destroy=extend_schema(
        responses={
            204: None,
            409: OpenApiResponse(
                ERROR, description="The step is in use, or the last of a deployed workflow."
            ),
        }
    ),
)
class StepViewSet(viewsets.ModelViewSet):
    queryset = Steps.objects.select_related("role")
    serializer_class = StepSerializer
    filterset_fields = ["workflow", "role"]
    permission_classes = [IsStaffOrReadOnly]

    def perform_destroy(self, instance: Steps) -> None:
        services.step_delete(step=instance)
