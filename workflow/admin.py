from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from workflow import services
from workflow.models import Roles, Steps, Workflows, WorkflowVersion
from workflow_api import errors


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
    fields = [
        "order",
        "name",
        "role",
        "assignment_strategy",
        "max_assignees",
        "sla",
        "escalation",
        "escalation_role",
        "completion_policy",
        "description",
        "instruction",
    ]
    autocomplete_fields = ["role", "escalation_role"]


def _steps_of(version: WorkflowVersion) -> str:
    steps = Steps.all_objects.filter(versions=version).select_related("role").order_by("order")
    return ", ".join(f"{step.order}. {step.name} ({step.role.name})" for step in steps)


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
    readonly_fields = ["versions"]

    @admin.display(description="versions (new tickets take the live one; tasks keep the one they started on)")
    def versions(self, workflow: Workflows) -> str:
        if workflow.pk is None:
            return ""
        open_tasks = Count("tasks", filter=Q(tasks__status__in=["pending", "in_progress", "on_hold"]))
        rows = [
            (
                version.number,
                "(live)" if version.pk == workflow.live_version_id else "",
                version.open_tasks,
                _steps_of(version),
            )
            for version in workflow.versions.annotate(open_tasks=open_tasks).order_by("-number")
        ]
        if not rows:
            return (
                "none yet: a version is made when the workflow is deployed, and at each change while deployed"
            )
        return format_html_join(mark_safe("<br>"), "v{} {} - {} open task(s) - steps: {}", rows)

    def save_model(self, request, obj: Workflows, form, change: bool) -> None:
        before = services.workflow_terms(Workflows.objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)
        obj._terms_before = before

    def save_formset(self, request, form, formset, change: bool) -> None:
        if formset.model is not Steps:
            return super().save_formset(request, form, formset, change)
        # Steps change through the service, as in the API: a step a version holds is replaced.
        formset.save(commit=False)
        for step in formset.deleted_objects:
            services.step_delete(step=step, publish=False)
        for step_form in formset.forms:
            if not step_form.has_changed() or step_form in formset.deleted_forms:
                continue
            values = {name: step_form.cleaned_data[name] for name in step_form.changed_data}
            original = (
                Steps.objects.filter(pk=step_form.instance.pk).first() if step_form.instance.pk else None
            )
            if original is None:
                values = {
                    name: value
                    for name, value in step_form.cleaned_data.items()
                    if name not in ("id", "DELETE")
                }
                values["workflow"] = form.instance
            services.step_save(step=original, values=values, publish=False)
        form.instance._steps_changed = formset.has_changed()
        return None

    def save_related(self, request, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        workflow = form.instance
        steps_changed = (
            getattr(workflow, "_steps_changed", False) and workflow.status == Workflows.Status.DEPLOYED
        )
        before = getattr(workflow, "_terms_before", {})
        if steps_changed or services.workflow_needs_new_version(before=before, workflow=workflow):
            services.workflow_publish_version(workflow=workflow)


@admin.register(Steps)
class StepsAdmin(admin.ModelAdmin):
    list_display = ["step_id", "workflow", "order", "name", "role", "assignment_strategy", "max_assignees"]
    list_filter = ["workflow", "role", "assignment_strategy"]
    ordering = ["workflow", "order"]

    def has_delete_permission(self, request, obj: Steps | None = None) -> bool:
        # The last step of a deployed workflow stays, or the workflow would have none.
        if obj is not None and services.is_last_step_of_deployed_workflow(step=obj):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj: Steps, form, change: bool) -> None:
        if not change:
            services.step_save(step=None, values={name: getattr(obj, name) for name in form.cleaned_data})
            return
        original = Steps.objects.get(pk=obj.pk)
        services.step_save(
            step=original, values={name: form.cleaned_data[name] for name in form.changed_data}
        )

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
