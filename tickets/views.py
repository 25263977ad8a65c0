from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from tickets.models import WorkflowTicket
from tickets.serializers import WorkflowTicketSerializer, WorkflowTicketSummarySerializer
from workflow_api import filters
from workflow_api.pagination import KeysetPagination
from workflow_api.permissions import IsStaff


class TicketFilter(filters.FilterSet):
    class Meta:
        model = WorkflowTicket
        fields = ["is_task_allocated", "allocation_error", "department", "category", "ticket_number"]


@extend_schema_view(
    list=extend_schema(
        summary="List received tickets with their allocation outcome (staff); without ticket_data"
    ),
    retrieve=extend_schema(summary="Read one received ticket (staff)"),
)
class WorkflowTicketViewSet(viewsets.ReadOnlyModelViewSet):
    """Tickets as received from producers, with their allocation outcome. Read-only.

    Staff only: `ticket_data` is the producer's full message, with the
    requester's personal data; assignees see the subject through their tasks.
    Lists leave `ticket_data` out (a page would carry every ticket's text
    twice); a ticket's details keep it.
    """

    queryset = WorkflowTicket.objects.all()
    serializer_class = WorkflowTicketSerializer
    filterset_class = TicketFilter
    permission_classes = [IsStaff]
    pagination_class = KeysetPagination
    # Newest first, as the model orders them; served by ticket_list_idx.
    keyset_ordering = ("-created_at", "-id")

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.defer("ticket_data") if self.action == "list" else queryset

    def get_serializer_class(self):
        return WorkflowTicketSummarySerializer if self.action == "list" else WorkflowTicketSerializer
