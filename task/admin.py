from django.contrib import admin

from task.models import RoundRobinState, Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["task_id", "status", "ticket", "workflow", "current_step", "created_at"]
    list_filter = ["status", "workflow"]
    list_select_related = ["ticket", "workflow", "current_step__workflow"]
    search_fields = ["ticket__ticket_number", "ticket__subject"]
    raw_id_fields = ["ticket"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(RoundRobinState)
class RoundRobinStateAdmin(admin.ModelAdmin):
    list_display = ["role_name", "next_index", "updated_at"]
    readonly_fields = ["role_name", "next_index", "updated_at"]
