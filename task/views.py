import django_filters
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from task import selectors, services
from task.models import Task
from task.serializers import (
    CreateTaskForTicketSerializer,
    TaskSerializer,
    UserAssignmentSerializer,
    UserStatusUpdateSerializer,
)


class TaskFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Task.Status.choices)
    ticket_id = django_filters.NumberFilter(field_name="ticket_id")
    workflow_id = django_filters.NumberFilter(field_name="workflow_id")

    class Meta:
        model = Task
        fields = ["status", "ticket_id", "workflow_id"]


class TaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tasks: read them, and drive them through their lifecycle with the actions below."""

    queryset = Task.objects.select_related("ticket", "workflow", "current_step__role")
    serializer_class = TaskSerializer
    filterset_class = TaskFilter

    def _respond(self, task: Task, http_status: int = status.HTTP_200_OK) -> Response:
        task = self.get_queryset().get(pk=task.pk)
        return Response(TaskSerializer(task).data, status=http_status)

    @action(detail=False, methods=["post"], serializer_class=CreateTaskForTicketSerializer)
    def create_task_for_ticket(self, request: Request) -> Response:
        serializer = CreateTaskForTicketSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task, created = services.task_create_for_ticket(ticket_id=serializer.validated_data["ticket_id"])
        return self._respond(task, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @action(detail=True, methods=["post"], serializer_class=UserAssignmentSerializer)
    def assign_user(self, request: Request, pk: str | None = None) -> Response:
        serializer = UserAssignmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = services.task_assign_user(task_id=self.get_object().pk, user_data=serializer.validated_data)
        return self._respond(task)

    @action(detail=True, methods=["post"], serializer_class=UserStatusUpdateSerializer)
    def update_user_status(self, request: Request, pk: str | None = None) -> Response:
        serializer = UserStatusUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = services.task_update_user_status(
            task_id=self.get_object().pk,
            user_id=serializer.validated_data["user_id"],
            new_status=serializer.validated_data["status"],
        )
        return self._respond(task)

    @action(detail=True, methods=["post"])
    def complete_task(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(services.task_complete(task_id=self.get_object().pk))

    @action(detail=True, methods=["post"])
    def move_to_next_step(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(services.task_move_to_next_step(task_id=self.get_object().pk))

    @action(detail=False, methods=["get"])
    def workflow_statistics(self, request: Request) -> Response:
        return Response(selectors.task_statistics())
