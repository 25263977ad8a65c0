from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from task import selectors as task_selectors
from workflow import selectors, services
from workflow.models import Roles, Steps, Workflows
from workflow.serializers import (
    AssignmentReportQuerySerializer,
    AssignmentReportSerializer,
    NextAssigneesQuerySerializer,
    NextAssigneesSerializer,
    RoleSerializer,
    StepSerializer,
    WorkflowMatchQuerySerializer,
    WorkflowMatchSerializer,
    WorkflowSerializer,
)
from workflow_api import filters
from workflow_api.permissions import IsStaff, IsStaffOrReadOnly
from workflow_api.schema import ERROR, VALIDATION_ERROR

# Configuration is readable by every authenticated caller (assignees see which
# workflow and step their task is in) and changed only by staff.

TTS_UNAVAILABLE = OpenApiResponse(ERROR, description="The identity service (TTS) did not answer usefully.")


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

    @extend_schema(
        summary="Per user of the role: assignments received, open and completed in a window (staff)",
        parameters=[AssignmentReportQuerySerializer],
        responses={200: AssignmentReportSerializer, 400: VALIDATION_ERROR, 503: TTS_UNAVAILABLE},
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        permission_classes=[IsStaff],
        filter_backends=[],
        pagination_class=None,
    )
    def assignment_report(self, request: Request, pk: str | None = None) -> Response:
        role = self.get_object()
        query = AssignmentReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = task_selectors.role_assignment_report(role=role, **query.validated_data)
        return Response(AssignmentReportSerializer(report).data)


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

    def perform_update(self, serializer: WorkflowSerializer) -> None:
        before = services.workflow_terms(serializer.instance)
        # The change and its version commit together: a deployed workflow never differs from its live version.
        with transaction.atomic():
            workflow = serializer.save()
            if services.workflow_needs_new_version(before=before, workflow=workflow):
                services.workflow_publish_version(workflow=workflow)

    @extend_schema(
        summary="The workflow a ticket with these fields would get: exactly, by fallback or none (staff)",
        parameters=[WorkflowMatchQuerySerializer],
        responses={200: WorkflowMatchSerializer, 400: VALIDATION_ERROR},
        filters=False,
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="match",
        permission_classes=[IsStaff],
        filter_backends=[],
        pagination_class=None,
    )
    def match(self, request: Request) -> Response:
        query = WorkflowMatchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = selectors.match_workflow(**query.validated_data)
        workflow = (
            Workflows.objects.prefetch_related("steps__role").get(pk=found.workflow.pk)
            if found.workflow is not None
            else None
        )
        return Response(WorkflowMatchSerializer({"match": found.kind, "workflow": workflow}).data)


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

    def perform_create(self, serializer: StepSerializer) -> None:
        serializer.instance = services.step_save(step=None, values=serializer.validated_data)

    def perform_update(self, serializer: StepSerializer) -> None:
        # A step that a workflow version holds is replaced, not changed: the answer has the new id.
        serializer.instance = services.step_save(step=serializer.instance, values=serializer.validated_data)

    def perform_destroy(self, instance: Steps) -> None:
        services.step_delete(step=instance)

    @extend_schema(
        summary="Who the next tickets reaching this step would go to, as things stand (staff)",
        parameters=[NextAssigneesQuerySerializer],
        responses={200: NextAssigneesSerializer, 400: VALIDATION_ERROR, 503: TTS_UNAVAILABLE},
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        permission_classes=[IsStaff],
        filter_backends=[],
        pagination_class=None,
    )
    def next_assignees(self, request: Request, pk: str | None = None) -> Response:
        step = self.get_object()
        query = NextAssigneesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        answer = task_selectors.step_next_assignees(step=step, count=query.validated_data["count"])
        return Response(NextAssigneesSerializer(answer).data)
