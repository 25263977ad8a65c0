import json

from django.contrib import admin, messages
from django.utils.html import format_html

from tickets import services, tasks
from tickets.models import RedeliveredMessage, WorkflowTicket


@admin.register(WorkflowTicket)
class WorkflowTicketAdmin(admin.ModelAdmin):
    list_display = [
        "ticket_number",
        "subject",
        "department",
        "category",
        "sub_category",
        "is_task_allocated",
        "allocation_failure_reason",
        "created_at",
    ]
    list_filter = ["is_task_allocated", "allocation_error", "department", "category"]
    search_fields = ["ticket_number", "subject"]
    readonly_fields = [
        "ticket_number",
        "original_ticket_id",
        "is_task_allocated",
        "allocation_error",
        "allocation_failure_reason",
        "allocation_attempts",
        "last_allocation_attempt_at",
        "pretty_ticket_data",
        "fetched_at",
        "created_at",
        "updated_at",
    ]
    exclude = ["ticket_data", "allocation_error_detail"]
    actions = ["retry_allocation"]

    @admin.display(description="Raw payload")
    def pretty_ticket_data(self, ticket: WorkflowTicket) -> str:
        return format_html("<pre>{}</pre>", json.dumps(ticket.ticket_data, indent=2, ensure_ascii=False))

    @admin.display(description="Allocation failure")
    def allocation_failure_reason(self, ticket: WorkflowTicket) -> str:
        return ticket.allocation_failure_reason

    @admin.action(description="Retry task allocation for selected unallocated tickets")
    def retry_allocation(self, request, queryset) -> None:
        ticket_ids = services.ticket_reset_allocation(ticket_ids=list(queryset.values_list("pk", flat=True)))
        for ticket_id in ticket_ids:
            tasks.create_task_for_ticket.delay_on_commit(ticket_id)
        self.message_user(request, f"Allocation re-queued for {len(ticket_ids)} ticket(s).", messages.SUCCESS)


@admin.register(RedeliveredMessage)
class RedeliveredMessageAdmin(admin.ModelAdmin):
    list_display = [
        "message_id",
        "task_name",
        "ticket_number",
        "redeliveries",
        "dropped",
        "last_redelivered_at",
    ]
    list_filter = ["dropped", "task_name"]
    search_fields = ["message_id", "ticket_number"]
    readonly_fields = [field.name for field in RedeliveredMessage._meta.fields]
