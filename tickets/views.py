import django_filters
from rest_framework import viewsets

from tickets.models import WorkflowTicket
from tickets.serializers import WorkflowTicketSerializer


class TicketFilter(django_filters.FilterSet):
    class Meta:
        model = WorkflowTicket
        fields = ["is_task_allocated", "allocation_error", "department", "category", "ticket_number"]


class WorkflowTicketViewSet(viewsets.ReadOnlyModelViewSet):
    """Tickets as received from producers, with their allocation outcome. Read-only."""

    queryset = WorkflowTicket.objects.all()
    serializer_class = WorkflowTicketSerializer
    filterset_class = TicketFilter
