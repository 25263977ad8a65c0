import json
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from task import services
from task.models import Assignment, AvailabilityChange, RoundRobinState, Task, TaskEvent, UserAvailability
from task.tts import MAX_USER_ID
from workflow_api import errors
from workflow_api.errors import DomainError
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
    fields = ["at", "kind", "actor", "step", "what"]
    readonly_fields = fields
    ordering = ["id"]

    @admin.display(description="what")
    def what(self, event: TaskEvent) -> str:
        """One line for people, and the whole record folded beneath it (no script needed)."""
        details = event.details if isinstance(event.details, dict) else {}
        decision = details.get("decision") if isinstance(details.get("decision"), dict) else {}
        parts = []
        if decision:
            chosen = ", ".join(str(user_id) for user_id in decision.get("chosen") or []) or "nobody"
            candidates = (decision.get("candidates") or {}).get("count", "?")
            parts.append(f"chose {chosen} by {decision.get('strategy', '?')} among {candidates} listed")
            skipped = decision.get("skipped_counts") or {}
            if skipped:
                parts.append("skipped " + ", ".join(f"{count} {reason}" for reason, count in skipped.items()))
        parts.extend(
            f"{key.replace('_', ' ')} {value}"
            for key, value in details.items()
            if key != "decision" and isinstance(value, str | int | float)
        )
        return format_html(
            "<details><summary>{}</summary><pre>{}</pre></details>",
            "; ".join(parts) or "details",
            json.dumps(details, indent=2, ensure_ascii=False),
        )


class ReassignForm(forms.Form):
    from_user_id = forms.TypedChoiceField(
        coerce=int, label="Assignee to replace", help_text="A user assigned to the task's current step."
    )
    to_user_id = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_USER_ID,
        label="Replace with user id",
        help_text="Blank: the step's assignment strategy picks the next eligible user of the step's role.",
    )

    def __init__(self, *args, task: Task, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from_user_id"].choices = [
            (row.user_id, f"user {row.user_id} ({row.get_status_display()})")
            for row in task.current_assignments
        ]


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))

    def __init__(self, *args, required: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = required


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    """Read-only: every change goes through task.services, from the actions and the reassign page."""

    list_display = [
        "task_id",
        "status",
        "ticket_number",
        "workflow",
        "step_name",
        "step_due_at",
        "created_at",
    ]
    list_filter = ["status", "workflow"]
    list_select_related = ["ticket", "workflow", "current_step"]
    search_fields = ["ticket__ticket_number", "ticket__subject"]
    fields = [
        "ticket_link",
        "status",
        "workflow_link",
        "current_step_display",
        "assignees",
        "created_at",
        "updated_at",
        "fetched_at",
        "held_at",
        "step_entered_at",
        "step_due_at",
        "escalated_at",
    ]
    # task.services owns a task's state, its step and its assignees.
    readonly_fields = fields
    inlines = [AssignmentInline, TaskEventInline]
    actions = ["complete_tasks", "move_tasks_to_next_step", "hold_tasks", "resume_tasks", "cancel_tasks"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tasks come from tickets (or the create_task_for_ticket action), never from a blank form.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        # Deleting would drop open assignments without releasing their users' load.
        return False

    def save_model(self, request: HttpRequest, obj: Task, form: forms.ModelForm, change: bool) -> None:
        # Nothing on the page is editable; a save must not write back a state read before it.
        return

    @admin.display(description="ticket", ordering="ticket__ticket_number")
    def ticket_number(self, task: Task) -> str:
        return task.ticket.ticket_number

    @admin.display(description="step", ordering="current_step__order")
    def step_name(self, task: Task) -> str:
        step = task.current_step
        return f"{step.order}. {step.name}" if step is not None else "-"

    @admin.display(description="ticket")
    def ticket_link(self, task: Task) -> str:
        url = reverse("admin:tickets_workflowticket_change", args=[task.ticket_id])
        return format_html('<a href="{}">{}</a> {}', url, task.ticket.ticket_number, task.ticket.subject)

    @admin.display(description="workflow")
    def workflow_link(self, task: Task) -> str:
        url = reverse("admin:workflow_workflows_change", args=[task.workflow_id])
        return format_html('<a href="{}">{}</a>', url, task.workflow.name)

    @admin.display(description="current step")
    def current_step_display(self, task: Task) -> str:
        step = task.current_step
        if step is None:
            return "-"
        total = task.workflow.steps.count()
        return f"{step.order}. {step.name} (role {step.role.name}; step {step.order} of {total} by order)"

    @admin.display(description="assignees (current step)")
    def assignees(self, task: Task) -> str:
        rows = task.current_assignments
        if not rows:
            return "nobody"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row.user_id,
                    row.role,
                    row.get_status_display(),
                    row.get_origin_display(),
                    date_format(timezone.localtime(row.assigned_on), "DATETIME_FORMAT"),
                )
                for row in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>user</th><th>role</th><th>status</th><th>how</th>"
            "<th>assigned on</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    def _each(self, request: HttpRequest, queryset, service, done: str) -> None:
        changed, refused = 0, []
        for task_id in queryset.values_list("pk", flat=True):
            try:
                service(task_id=task_id, actor=actor_id(request.user))
            except DomainError as exc:
                refused.append(f"task {task_id}: {exc.message}")
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{changed} task(s) {done}.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.ERROR)

    @admin.action(description="Complete selected tasks", permissions=["change"])
    def complete_tasks(self, request: HttpRequest, queryset) -> None:
        self._each(request, queryset, services.task_complete, "completed")

    @admin.action(description="Move selected tasks to their next step", permissions=["change"])
    def move_tasks_to_next_step(self, request: HttpRequest, queryset) -> None:
        self._each(request, queryset, services.task_move_to_next_step, "moved on")

    def _with_reason(self, request: HttpRequest, queryset, service, *, action: str, title: str, done: str):
        """Ask for the reason on a page of its own, then apply `service` to each selected task."""
        form = ReasonForm(
            request.POST if "apply" in request.POST else None, required=action != "resume_tasks"
        )
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            self._each(
                request,
                queryset,
                lambda *, task_id, actor: service(task_id=task_id, reason=reason, actor=actor),
                done,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "tasks": list(queryset),
            "action": action,
            "form": form,
        }
        return TemplateResponse(request, "admin/task/task/lifecycle_action.html", context)

    @admin.action(description="Put selected tasks on hold", permissions=["change"])
    def hold_tasks(self, request: HttpRequest, queryset):
        return self._with_reason(
            request,
            queryset,
            services.task_hold,
            action="hold_tasks",
            title="Put on hold",
            done="put on hold",
        )

    @admin.action(description="Resume selected tasks", permissions=["change"])
    def resume_tasks(self, request: HttpRequest, queryset):
        return self._with_reason(
            request, queryset, services.task_resume, action="resume_tasks", title="Resume", done="resumed"
        )

    @admin.action(description="Cancel selected tasks", permissions=["change"])
    def cancel_tasks(self, request: HttpRequest, queryset):
        return self._with_reason(
            request, queryset, services.task_cancel, action="cancel_tasks", title="Cancel", done="cancelled"
        )

    def get_urls(self) -> list:
        return [
            path(
                "<int:task_id>/reassign/",
                self.admin_site.admin_view(self.reassign_view),
                name="task_task_reassign",
            ),
            *super().get_urls(),
        ]

    def reassign_view(self, request: HttpRequest, task_id: int) -> HttpResponse:
        task = (
            Task.objects.select_related("ticket", "workflow", "current_step__role").filter(pk=task_id).first()
        )
        if task is None:
            raise Http404(f"Task {task_id} does not exist")
        if not self.has_change_permission(request, task):
            raise PermissionDenied
        form = ReassignForm(request.POST or None, task=task)
        if request.method == "POST" and form.is_valid():
            try:
                services.task_reassign(
                    task_id=task.pk,
                    from_user_id=form.cleaned_data["from_user_id"],
                    to_user_id=form.cleaned_data["to_user_id"],
                    actor=actor_id(request.user),
                )
            except errors.InvalidInput as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Task {task.pk} reassigned.", messages.SUCCESS)
                return redirect("admin:task_task_change", task.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Reassign task {task.pk}",
            "task": task,
            "form": form,
        }
        return TemplateResponse(request, "admin/task/task/reassign.html", context)


class UserAvailabilityForm(forms.ModelForm):
    class Meta:
        model = UserAvailability
        fields = ["user_id", "status", "until", "max_open_assignments"]
        help_texts = {
            "user_id": "The user's id, as TTS lists users.",
            "status": (
                "Available: takes new work. Away: gets new work only when nobody available in the role "
                "is eligible. Unavailable: gets none, and their not-started assignments move to others."
            ),
        }

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
    """Written only by decisions (task.services); shown to see where a role's rotation stands."""

    list_display = ["role_name", "next_index", "updated_at"]
    readonly_fields = ["role_name", "next_index", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RoundRobinState | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RoundRobinState | None = None) -> bool:
        # Decisions check the row's version: a deleted row would race with the one being decided.
        return False
