from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from workflow import services
from workflow.models import Roles, Steps, Workflows
from workflow_api import errors


@admin.register(Roles)
class RolesAdmin(admin.ModelAdmin):
    list_display = ["role_id", "name", "description", "updated_at"]
    search_fields = ["name"]


class StepsInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept = [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        try:
            services.workflow_check_deployable(status=self.instance.status, step_count=len(kept))
        except errors.InvalidInput as exc:
            raise ValidationError(exc.message) from exc


class StepsInline(admin.TabularInline):
    model = Steps
    formset = StepsInlineFormSet
    extra = 0
    ordering = ["order"]
    fields = ["order", "name", "role", "assignment_strategy", "max_assignees", "description", "instruction"]
    autocomplete_fields = ["role"]


@admin.register(Workflows)
class WorkflowsAdmin(admin.ModelAdmin):
    list_display = [
        "workflow_id",
        "name",
        "department",
        "category",
        "sub_category",
        "status",
        "is_published",
    ]
    list_filter = ["status", "is_published", "department"]
    search_fields = ["name", "department", "category", "sub_category"]
    inlines = [StepsInline]


@admin.register(Steps)
class StepsAdmin(admin.ModelAdmin):
    list_display = ["step_id", "workflow", "order", "name", "role", "assignment_strategy", "max_assignees"]
    list_filter = ["workflow", "role", "assignment_strategy"]
    ordering = ["workflow", "order"]
    autocomplete_fields = ["role"]

    def get_readonly_fields(self, request: HttpRequest, obj: Steps | None = None) -> list[str]:
        # A step stays in its workflow (workflow.services.step_check_workflow).
        return ["workflow"] if obj is not None else []

    def has_delete_permission(self, request, obj: Steps | None = None) -> bool:
        # The last step of a deployed workflow stays, or the workflow would have none.
        if obj is not None and services.is_last_step_of_deployed_workflow(step=obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj: Steps) -> None:
        services.step_delete(step=obj)

    def delete_queryset(self, request, queryset) -> None:
        kept = 0
        for step in queryset.select_related("workflow"):
            try:
                services.step_delete(step=step)
            except errors.InvalidTransition:
                kept += 1
        if kept:
            self.message_user(
                request, f"Kept {kept} step(s): the last step of a deployed workflow.", messages.WARNING
            )
