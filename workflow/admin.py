from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, Q
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from task import selectors as task_selectors
from workflow import selectors, services
from workflow.models import Roles, Steps, Workflows, WorkflowVersion
from workflow_api import errors

# How many coming decisions the workload page shows per step.
WORKLOAD_LOOKAHEAD = 5


def _warn(request: HttpRequest, warnings: list[str]) -> None:
    for warning in warnings:
        messages.warning(request, warning)


def _page(request: HttpRequest, model_admin: admin.ModelAdmin, template: str, **context) -> TemplateResponse:
    return TemplateResponse(
        request,
        template,
        {**model_admin.admin_site.each_context(request), "opts": model_admin.opts, **context},
    )


@admin.register(Roles)
class RolesAdmin(admin.ModelAdmin):
    list_display = ["role_id", "name", "description", "workload_link", "updated_at"]
    list_display_links = ["role_id", "name"]
    search_fields = ["name"]

    @admin.display(description="workload")
    def workload_link(self, role: Roles) -> str:
        return format_html(
            '<a href="{}">workload</a>', reverse("admin:workflow_roles_workload", args=[role.pk])
        )

    def get_urls(self) -> list:
        return [
            path(
                "<int:role_id>/workload/",
                self.admin_site.admin_view(self.workload_view),
                name="workflow_roles_workload",
            ),
            *super().get_urls(),
        ]

    def workload_view(self, request: HttpRequest, role_id: int) -> TemplateResponse:
        role = Roles.objects.filter(pk=role_id).first()
        if role is None:
            raise Http404(f"Role {role_id} does not exist")
        if not self.has_view_permission(request, role):
            raise PermissionDenied
        workload = task_selectors.role_workload(
            role=role, count=WORKLOAD_LOOKAHEAD, tts_timeout=services.ROLE_CHECK_TIMEOUT
        )
        return _page(
            request,
            self,
            "admin/workflow/roles/workload.html",
            title=f"Workload of role {role.name}",
            role=role,
            workload=workload,
            lookahead=WORKLOAD_LOOKAHEAD,
        )

    def save_model(self, request: HttpRequest, obj: Roles, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change or "name" in form.changed_data:
            _warn(request, services.role_warnings(role=obj))


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
    # The table keeps to what orders and assigns the steps, so it fits a 1,366 px
    # screen; each step's deadline, escalation, completion rule, description and instruction are
    # on its own page (the link).
    fields = ["order", "name", "role", "assignment_strategy", "max_assignees"]
    autocomplete_fields = ["role"]
    show_change_link = True
    formfield_overrides = {
        models.CharField: {"widget": forms.TextInput(attrs={"size": 24})},
        models.PositiveIntegerField: {"widget": forms.NumberInput(attrs={"style": "width: 4em"})},
        models.PositiveSmallIntegerField: {"widget": forms.NumberInput(attrs={"style": "width: 4em"})},
    }

    class Media:
        # Numbers each new row after the highest order on the page (no inline script: CSP).
        js = ["workflow/step_order.js"]


def _steps_of(version: WorkflowVersion) -> str:
    steps = Steps.all_objects.filter(versions=version).select_related("role").order_by("order")
    return ", ".join(f"{step.order}. {step.name} ({step.role.name})" for step in steps)


class RoutingTesterForm(forms.Form):
    department = forms.CharField(required=False, max_length=150)
    category = forms.CharField(required=False, max_length=150)
    sub_category = forms.CharField(required=False, max_length=150, help_text="Blank for none.")


@admin.register(Workflows)
class WorkflowsAdmin(admin.ModelAdmin):
    # Few columns, so the list fits 1,366 px.
    list_display = ["workflow_id", "name", "route", "live", "step_count", "status"]
    list_display_links = ["workflow_id", "name"]
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
        _warn(request, services.workflow_warnings(workflow=workflow))

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(step_total=Count("steps"))

    @admin.display(description="route (department / category / sub category)")
    def route(self, workflow: Workflows) -> str:
        return f"{workflow.department} / {workflow.category} / {workflow.sub_category or '(any: catch-all)'}"

    @admin.display(description="live", boolean=True)
    def live(self, workflow: Workflows) -> bool:
        return services.is_live(workflow)

    @admin.display(description="steps", ordering="step_total")
    def step_count(self, workflow: Workflows) -> int:
        return workflow.step_total

    def get_urls(self) -> list:
        return [
            path(
                "routing-tester/",
                self.admin_site.admin_view(self.routing_tester_view),
                name="workflow_workflows_routing_tester",
            ),
            *super().get_urls(),
        ]

    def routing_tester_view(self, request: HttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = RoutingTesterForm(request.GET or None)
        found = first_step = None
        if form.is_valid():
            found = selectors.match_workflow(**form.cleaned_data)
            if found.workflow is not None:
                first_step = selectors.workflow_first_step(workflow=found.workflow)
        return _page(
            request,
            self,
            "admin/workflow/workflows/routing_tester.html",
            title="Routing tester: which workflow would a ticket get?",
            form=form,
            found=found,
            first_step=first_step,
        )


@admin.register(Steps)
class StepsAdmin(admin.ModelAdmin):
    list_display = ["step_id", "workflow", "order", "name", "role", "assignment_strategy"]
    list_select_related = ["workflow", "role"]
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
