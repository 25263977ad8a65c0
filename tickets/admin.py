import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import Truncator
from django.utils.timesince import timesince

from tickets import selectors, services, tasks
from tickets.models import RedeliveredMessage, WorkflowTicket


@admin.register(WorkflowTicket)
class WorkflowTicketAdmin(admin.ModelAdmin):
    """Read-only: tickets are the producers' (a redelivery overwrites them); allocation is retried."""

    # Few columns, so the list fits 1,366 px; the route is on the ticket's page.
    list_display = [
        "ticket_number",
        "short_subject",
        "is_task_allocated",
        "allocation_failure_reason",
        "created_at",
    ]
    list_filter = ["is_task_allocated", "allocation_error", "department", "category"]
    search_fields = ["ticket_number", "subject"]
    readonly_fields = [
        "ticket_number",
        "task_link",
        "subject",
        "description",
        "department",
        "category",
        "sub_category",
        "priority",
        "status",
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

    def get_urls(self) -> list:
        return [
            path(
                "unallocated/",
                self.admin_site.admin_view(self.unallocated_view),
                name="tickets_workflowticket_unallocated",
            ),
            *super().get_urls(),
        ]

    def unallocated_view(self, request: HttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        reasons = selectors.unallocated_by_reason(now=now)
        for entry in reasons:
            entry["age"] = timesince(entry["oldest"], now)
            entry["query"] = urlencode(
                {"is_task_allocated__exact": "0", "allocation_error__exact": entry["reason"]}
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Unallocated tickets by reason",
            "reasons": reasons,
            "total": sum(entry["count"] for entry in reasons),
        }
        return TemplateResponse(request, "admin/tickets/workflowticket/unallocated.html", context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tickets come from producers, through tickets.tasks.receive_ticket.
        return False

    def has_change_permission(self, request: HttpRequest, obj: WorkflowTicket | None = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tickets.change_workflowticket")

    @admin.display(description="subject", ordering="subject")
    def short_subject(self, ticket: WorkflowTicket) -> str:
        return Truncator(ticket.subject).chars(60)

    @admin.display(description="task")
    def task_link(self, ticket: WorkflowTicket) -> str:
        task = ticket.tasks.first()
        if task is None:
            return "none yet"
        url = reverse("admin:task_task_change", args=[task.pk])
        return format_html('<a href="{}">task {}</a> ({})', url, task.pk, task.get_status_display())

    @admin.display(description="Allocation failure")
    def allocation_failure_reason(self, ticket: WorkflowTicket) -> str:
        return ticket.allocation_failure_reason

    @admin.action(description="Retry task allocation for selected unallocated tickets", permissions=["retry"])
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Written by the intake when a message comes back; a blank row would mean nothing.
        return False

    def has_change_permission(self, request: HttpRequest, obj: RedeliveredMessage | None = None) -> bool:
        return False
