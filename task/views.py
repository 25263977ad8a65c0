import django_filters
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from task import selectors, services
from task.models import Task, UserAvailability
from task.serializers import (
    AvailabilityChangeSerializer,
    AvailabilityDetailSerializer,
    AvailabilitySerializer,
    AvailabilityUpdateSerializer,
    CreateTaskForTicketSerializer,
    ReasonSerializer,
    ReassignSerializer,
    ResumeSerializer,
    TaskEventSerializer,
    TaskSerializer,
    TaskStatisticsSerializer,
    UserAssignmentSerializer,
    UserStatusUpdateSerializer,
)
from task.tts import MAX_USER_ID
from workflow_api import filters
from workflow_api.pagination import KeysetPagination
from workflow_api.permissions import IsStaff, actor_id, caller_user_id, is_staff
from workflow_api.schema import ERROR

CONFLICT = OpenApiResponse(
    ERROR, description="The task's state does not allow this (e.g. already completed)."
)
TTS_UNAVAILABLE = OpenApiResponse(ERROR, description="The identity service (TTS) did not answer usefully.")


class TaskFilter(filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Task.Status.choices)
    ticket_id = filters.IdFilter(field_name="ticket_id")
    workflow_id = filters.IdFilter(field_name="workflow_id")
    overdue = filters.StrictBooleanFilter(
        method="filter_overdue", label="Pending or in progress, and past the step's deadline."
    )

    class Meta:
        model = Task
        fields = ["status", "ticket_id", "workflow_id", "overdue"]

    def filter_overdue(self, queryset: QuerySet[Task], name: str, value: bool | None) -> QuerySet[Task]:
        if value is None:
            return queryset
        overdue = Q(status__in=Task.ACTIVE_STATUSES, step_due_at__lte=timezone.now())
        return queryset.filter(overdue if value else ~overdue)


@extend_schema_view(
    list=extend_schema(summary="List tasks (staff: all; others: the tasks they are assigned to)"),
    retrieve=extend_schema(summary="Read a task (others' tasks answer 404 to non-staff)"),
)
class TaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tasks: read them, and drive them through their lifecycle with the actions below."""

    queryset = selectors.with_names(Task.objects.all())
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    pagination_class = KeysetPagination
    # Newest first; each filter alone has an index in this order (task.models).
    keyset_ordering = ("-task_id",)
    # Everything but reading one's own tasks and updating one's own status is staff work.
    staff_actions = frozenset(
        {
            "create_task_for_ticket",
            "assign_user",
            "complete_task",
            "move_to_next_step",
            "reassign",
            "cancel",
            "workflow_statistics",
        }
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

    def known_count(self) -> int | None:
        """The list's exact count without counting tasks, when its filters allow; else None.

        Staff filtering by status and workflow only: the kept counts. Others
        without filters: their assignments' index.
        """
        params = self.request.query_params
        if params.get("ticket_id") or params.get("overdue"):
            return None
        if is_staff(self.request.user):
            workflow_id = params.get("workflow_id")
            return selectors.task_count(
                status=params.get("status") or None, workflow_id=int(workflow_id) if workflow_id else None
            )
        user_id = caller_user_id(self.request.user)
        if user_id is None or params.get("status") or params.get("workflow_id"):
            return None
        return selectors.tasks_assigned_to_count(user_id=user_id, limit=settings.API_EXACT_COUNT_LIMIT)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        selectors.load_users(page)
        # Each task as DRF's ListSerializer would give it, without the list
        # serializer: it and its child refer to each other and to the page, so
        # the page's tasks would be freed only by the cyclic garbage collector.
        serializer = TaskSerializer()
        return self.get_paginated_response([serializer.to_representation(task) for task in page])

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        task = self.get_object()
        selectors.load_users([task])
        return Response(TaskSerializer(task).data)

    def _respond(self, task: Task, http_status: int = status.HTTP_200_OK) -> Response:
        task = self.get_queryset().get(pk=task.pk)
        selectors.load_users([task])
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
        task = services.task_assign_user(
            task_id=self.get_object().pk, user_data=serializer.validated_data, actor=actor_id(request.user)
        )
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
            task_id=task.pk,
            user_id=user_id,
            new_status=serializer.validated_data["status"],
            actor=actor_id(request.user),
        )
        return self._respond(task)

    @extend_schema(
        summary="Mark the task completed (staff)",
        request=None,
        responses={200: TaskSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def complete_task(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(
            services.task_complete(task_id=self.get_object().pk, actor=actor_id(request.user))
        )

    @extend_schema(
        summary="Move the task to its workflow's next step, or complete it after the last (staff)",
        request=None,
        responses={200: TaskSerializer, 409: CONFLICT, 503: TTS_UNAVAILABLE},
    )
    @action(detail=True, methods=["post"])
    def move_to_next_step(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(
            services.task_move_to_next_step(task_id=self.get_object().pk, actor=actor_id(request.user))
        )

    @extend_schema(
        summary="Move one assignee's place on the current step to another user of the role (staff)",
        request=ReassignSerializer,
        responses={
            200: TaskSerializer,
            409: OpenApiResponse(
                ERROR, description="Nobody in the role is eligible, or the task's state does not allow it."
            ),
            503: TTS_UNAVAILABLE,
        },
    )
    @action(detail=True, methods=["post"], serializer_class=ReassignSerializer)
    def reassign(self, request: Request, pk: str | None = None) -> Response:
        task = self.get_object()
        serializer = ReassignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = services.task_reassign(
            task_id=task.pk,
            from_user_id=serializer.validated_data["from_user_id"],
            to_user_id=serializer.validated_data.get("to_user_id"),
            actor=actor_id(request.user),
        )
        return self._respond(task)

    def _require_staff_or_current_assignee(self, task: Task) -> None:
        if is_staff(self.request.user):
            return
        user_id = caller_user_id(self.request.user)
        if not any(row.user_id == user_id for row in task.current_assignments):
            raise PermissionDenied("Only staff or an assignee of the task's current step may do this.")

    @extend_schema(
        summary="Put the task on hold (staff, or an assignee of its current step)",
        request=ReasonSerializer,
        responses={200: TaskSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], serializer_class=ReasonSerializer)
    def hold(self, request: Request, pk: str | None = None) -> Response:
        task = self.get_object()
        self._require_staff_or_current_assignee(task)
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = services.task_hold(
            task_id=task.pk, reason=serializer.validated_data["reason"], actor=actor_id(request.user)
        )
        return self._respond(task)

    @extend_schema(
        summary="Resume a task on hold (staff, or an assignee of its current step)",
        request=ResumeSerializer,
        responses={200: TaskSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], serializer_class=ResumeSerializer)
    def resume(self, request: Request, pk: str | None = None) -> Response:
        task = self.get_object()
        self._require_staff_or_current_assignee(task)
        serializer = ResumeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = services.task_resume(
            task_id=task.pk, reason=serializer.validated_data.get("reason", ""), actor=actor_id(request.user)
        )
        return self._respond(task)

    @extend_schema(
        summary="Cancel the task (staff)",
        request=ReasonSerializer,
        responses={200: TaskSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], serializer_class=ReasonSerializer)
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        task = self.get_object()
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = services.task_cancel(
            task_id=task.pk, reason=serializer.validated_data["reason"], actor=actor_id(request.user)
        )
        return self._respond(task)

    @extend_schema(
        summary="The task's history, oldest first: decisions and every change of the task and its assignees",
        responses={200: TaskEventSerializer(many=True)},
        filters=False,
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def history(self, request: Request, pk: str | None = None) -> Response:
        task = self.get_object()
        return Response(TaskEventSerializer(selectors.task_history(task_id=task.pk), many=True).data)

    @extend_schema(
        summary="Task counts by status, overall and per workflow (staff)",
        responses={200: TaskStatisticsSerializer},
        filters=False,
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def workflow_statistics(self, request: Request) -> Response:
        return Response(selectors.task_statistics())


USER_ID = OpenApiParameter(
    "user_id",
    {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID},
    OpenApiParameter.PATH,
    description="The user's id in the ecosystem's auth service (as in a task's `userID`).",
)
OWN_OR_STAFF = "callers may read their own; staff anyone's"


@extend_schema_view(
    list=extend_schema(
        summary="List users whose availability was set (staff)", responses=AvailabilitySerializer
    ),
    retrieve=extend_schema(
        summary=f"Read a user's availability ({OWN_OR_STAFF})",
        parameters=[USER_ID],
        responses=AvailabilityDetailSerializer,
    ),
    update=extend_schema(
        summary="Set a user's availability; only the fields sent change (own status and until; staff all)",
        parameters=[USER_ID],
        request=AvailabilityUpdateSerializer,
        responses=AvailabilityDetailSerializer,
    ),
    changes=extend_schema(
        summary=f"A user's availability changes, oldest first ({OWN_OR_STAFF})",
        parameters=[USER_ID],
        responses=AvailabilityChangeSerializer(many=True),
    ),
)
class AvailabilityViewSet(viewsets.GenericViewSet):
    """Whether users take new work, and how much. A user never set is available without limit."""

    queryset = UserAvailability.objects.none()
    serializer_class = AvailabilitySerializer
    lookup_field = "user_id"
    lookup_value_regex = "[0-9]+"
    # A form cannot tell an empty `until` from none at all; JSON's null can.
    parser_classes = [JSONParser]

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "list":
            return [IsStaff()]
        return [IsAuthenticated()]

    def _user_id(self) -> int:
        """The user named in the path, if the caller may see them: themselves, or anyone for staff."""
        user_id = int(self.kwargs["user_id"])
        if not 1 <= user_id <= MAX_USER_ID:
            raise NotFound()
        if not is_staff(self.request.user) and user_id != caller_user_id(self.request.user):
            raise PermissionDenied("You may see and set only your own availability.")
        return user_id

    def _detail(self, user_id: int) -> Response:
        entry = selectors.availability_of(user_id=user_id, now=timezone.now())
        entry["started_assignments"] = services.availability_started_assignments(user_id=user_id)
        return Response(AvailabilityDetailSerializer(entry).data)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.availability_list())
        now = timezone.now()
        entries = [
            selectors.availability_entry(
                user_id=row.user_id, row=row, open_assignments=row.open_assignments, now=now
            )
            for row in page
        ]
        return self.get_paginated_response(AvailabilitySerializer(entries, many=True).data)

    def retrieve(self, request: Request, user_id: str | None = None) -> Response:
        return self._detail(self._user_id())

    def update(self, request: Request, user_id: str | None = None) -> Response:
        target = self._user_id()
        serializer = AvailabilityUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if "max_open_assignments" in serializer.validated_data and not is_staff(request.user):
            raise PermissionDenied("Only staff may set max_open_assignments.")
        services.availability_set(user_id=target, actor=actor_id(request.user), **serializer.validated_data)
        return self._detail(target)

    @action(detail=True, methods=["get"], serializer_class=AvailabilityChangeSerializer)
    def changes(self, request: Request, user_id: str | None = None) -> Response:
        page = self.paginate_queryset(selectors.availability_changes(user_id=self._user_id()))
        return self.get_paginated_response(AvailabilityChangeSerializer(page, many=True).data)
