from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from workflow.models import Roles, Steps, Workflows


@admin.register(Roles)
class RolesAdmin(admin.ModelAdmin):
    list_display = ["role_id", "name", "description", "updated_at"]
    search_fields = ["name"]


class StepsInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if self.instance.status != Workflows.Status.DEPLOYED:
            return
        kept = [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        if not kept:
            raise ValidationError("A workflow with no steps cannot be deployed.")


class StepsInline(admin.TabularInline):
    model = Steps
    formset = StepsInlineFormSet
    extra = 0
    ordering = ["order"]
    fields = ["order", "name", "role", "description", "instruction"]
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
    list_display = ["step_id", "workflow", "order", "name", "role"]
    list_filter = ["workflow", "role"]
    ordering = ["workflow", "order"]
