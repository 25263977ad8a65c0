import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from task import selectors, services
from task.models import Task
from task.serializers import (
    CreateTaskForTicketSerializer,
    TaskSerializer,
    TaskStatisticsSerializer,
    UserAssignmentSerializer,
    UserStatusUpdateSerializer,
)
from workflow_api import filters
from workflow_api.permissions import IsStaff, caller_user_id, is_staff
from workflow_api.schema import ERROR

CONFLICT = OpenApiResponse(
    ERROR, description="The task's state does not allow this (e.g. already completed)."
)
TTS_UNAVAILABLE = OpenApiResponse(ERROR, description="The identity service (TTS) did not answer usefully.")


class TaskFilter(filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Task.Status.choices)
    ticket_id = filters.IdFilter(field_name="ticket_id")
    workflow_id = filters.IdFilter(field_name="workflow_id")

    class Meta:
        model = Task
        fields = ["status", "ticket_id", "workflow_id"]


@extend_schema_view(
    list=extend_schema(summary="List tasks (staff: all; others: the tasks they are assigned to)"),
    retrieve=extend_schema(summary="Read a task (others' tasks answer 404 to non-staff)"),
)
class TaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tasks: read them, and drive them through their lifecycle with the actions below."""

    # The ticket's raw payload is large and not part of a task's representation.
    queryset = selectors.with_current_assignments(
        Task.objects.select_related("ticket", "workflow", "current_step__role").defer("ticket__ticket_data")
    )
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    # Everything but reading one's own tasks and updating one's own status is staff work.
    staff_actions = frozenset(
        {"create_task_for_ticket", "assign_user", "complete_task", "move_to_next_step", "workflow_statistics"}
    )

    def get_permissions(self) -> list[BasePermission]:
        if self.action in self.staff_actions:
            return [IsStaff()]
        return [IsAuthenticated()]

    def get_queryset(self) -> QuerySet[Task]:
        queryset = super().get_queryset()
        if is_staff(self.request.user):
            return queryset
        user_id = caller_user_id(self.request.user)
        if user_id is None:
            return queryset.none()
        return selectors.tasks_assigned_to(queryset, user_id=user_id)

    def _respond(self, task: Task, http_status: int = status.HTTP_200_OK) -> Response:
        task = self.get_queryset().get(pk=task.pk)
        return Response(TaskSerializer(task).data, status=http_status)

    @extend_schema(
        summary="Create the task for a ticket by hand (staff)",
        request=CreateTaskForTicketSerializer,
        responses={
            201: OpenApiResponse(TaskSerializer, description="Task created."),
            200: OpenApiResponse(TaskSerializer, description="The ticket already had this task."),
            404: OpenApiResponse(ERROR, description="No such ticket."),
            409: OpenApiResponse(ERROR, description="No workflow, no steps or no users for the ticket."),
            503: TTS_UNAVAILABLE,
        },
    )
    @action(detail=False, methods=["post"], serializer_class=CreateTaskForTicketSerializer)
    def create_task_for_ticket(self, request: Request) -> Response:
        serializer = CreateTaskForTicketSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task, created = services.task_create_for_ticket(ticket_id=serializer.validated_data["ticket_id"])
        return self._respond(task, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="Assign one more user to the task (staff)",
        request=UserAssignmentSerializer,
        responses={200: TaskSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], serializer_class=UserAssignmentSerializer)
    def assign_user(self, request: Request, pk: str | None = None) -> Response:
        serializer = UserAssignmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = services.task_assign_user(task_id=self.get_object().pk, user_data=serializer.validated_data)
        return self._respond(task)

    @extend_schema(
        summary="Change an assigned user's status (staff, or that user for themselves)",
        request=UserStatusUpdateSerializer,
        responses={200: TaskSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], serializer_class=UserStatusUpdateSerializer)
    def update_user_status(self, request: Request, pk: str | None = None) -> Response:
        task = self.get_object()
        serializer = UserStatusUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_id = serializer.validated_data["user_id"]
        if not is_staff(request.user) and user_id != caller_user_id(request.user):
            raise PermissionDenied("You may change only your own assignment's status.")
        task = services.task_update_user_status(
            task_id=task.pk, user_id=user_id, new_status=serializer.validated_data["status"]
        )
        return self._respond(task)

    @extend_schema(
        summary="Mark the task completed (staff)",
        request=None,
        responses={200: TaskSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def complete_task(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(services.task_complete(task_id=self.get_object().pk))

    @extend_schema(
        summary="Move the task to its workflow's next step, or complete it after the last (staff)",
        request=None,
        responses={200: TaskSerializer, 409: CONFLICT, 503: TTS_UNAVAILABLE},
    )
    @action(detail=True, methods=["post"])
    def move_to_next_step(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(services.task_move_to_next_step(task_id=self.get_object().pk))

    @extend_schema(
        summary="Task counts by status, overall and per workflow (staff)",
        responses={200: TaskStatisticsSerializer},
        filters=False,
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def workflow_statistics(self, request: Request) -> Response:
        return Response(selectors.task_statistics())
