from datetime import datetime

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from task import services
from task.models import Assignment, AvailabilityChange, RoundRobinState, Task, TaskEvent, UserAvailability
from task.tts import MAX_USER_ID
from workflow_api.permissions import actor_id


class ReadOnlyInline(admin.TabularInline):
    """Rows that only task.services writes: shown on the task's page, never edited there."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AssignmentInline(ReadOnlyInline):
    model = Assignment
    verbose_name_plural = "assignments (every step, past and present)"
    fields = ["user_id", "role", "step", "status", "origin", "is_current", "is_open", "assigned_on"]
    readonly_fields = fields
    ordering = ["id"]


class TaskEventInline(ReadOnlyInline):
    model = TaskEvent
    verbose_name_plural = "history (oldest first)"
    fields = ["at", "kind", "actor", "step", "details"]
    readonly_fields = fields
    ordering = ["id"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["task_id", "status", "ticket", "workflow", "current_step", "step_due_at", "escalated_at"]
    list_filter = ["status", "workflow"]
    list_select_related = ["ticket", "workflow", "current_step__workflow"]
    search_fields = ["ticket__ticket_number", "ticket__subject"]
    # task.services owns a task's state, its step and its assignees.
    readonly_fields = [
        "ticket",
        "workflow",
        "current_step",
        "status",
        "created_at",
        "updated_at",
        "fetched_at",
        "held_at",
        "step_entered_at",
        "step_due_at",
        "escalated_at",
    ]
    inlines = [AssignmentInline, TaskEventInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tasks come from tickets (or the create_task_for_ticket action), never from a blank form.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        # Deleting would drop open assignments without releasing their users' load.
        return False


class UserAvailabilityForm(forms.ModelForm):
    class Meta:
        model = UserAvailability
        fields = ["user_id", "status", "until", "max_open_assignments"]

    def clean_user_id(self) -> int:
        user_id = self.cleaned_data["user_id"]
        if not 1 <= user_id <= MAX_USER_ID:
            raise forms.ValidationError(f"A user id is between 1 and {MAX_USER_ID}.")
        return user_id

    def clean_until(self) -> datetime | None:
        until = self.cleaned_data.get("until")
        if "until" in self.changed_data and until is not None and until <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return until


@admin.register(UserAvailability)
class UserAvailabilityAdmin(admin.ModelAdmin):
    """Saves go through task.services.availability_set, which records the change and moves work."""

    form = UserAvailabilityForm
    list_display = ["user_id", "status", "until", "max_open_assignments", "updated_at"]
    list_filter = ["status"]
    search_fields = ["user_id"]

    def get_readonly_fields(self, request: HttpRequest, obj: UserAvailability | None = None) -> list[str]:
        return ["user_id", "updated_at"] if obj is not None else ["updated_at"]

    def save_model(
        self, request: HttpRequest, obj: UserAvailability, form: forms.ModelForm, change: bool
    ) -> None:
        fields = {
            name: form.cleaned_data[name]
            for name in ("status", "until", "max_open_assignments")
            if name in form.changed_data
        }
        saved = services.availability_set(user_id=obj.user_id, actor=actor_id(request.user), **fields)
        obj.updated_at = saved.updated_at

    def has_delete_permission(self, request: HttpRequest, obj: UserAvailability | None = None) -> bool:
        # A deleted row would leave no record of the change; set the user available instead.
        return False


@admin.register(AvailabilityChange)
class AvailabilityChangeAdmin(admin.ModelAdmin):
    list_display = ["user_id", "changed_at", "changed_by", "changes"]
    search_fields = ["user_id"]
    readonly_fields = ["user_id", "changed_by", "changed_at", "changes"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AvailabilityChange | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AvailabilityChange | None = None) -> bool:
        return False


@admin.register(RoundRobinState)
class RoundRobinStateAdmin(admin.ModelAdmin):
    list_display = ["role_name", "next_index", "updated_at"]
    readonly_fields = ["role_name", "next_index", "updated_at"]
