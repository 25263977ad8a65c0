"""Rules on changing workflow configuration, called by the API and by admin alike, and the versions
that keep tasks in flight on their steps."""

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from task import tts
from workflow.models import Roles, Steps, Workflows, WorkflowVersion
from workflow_api import errors

# Seconds an admin page waits for TTS before saying it could not tell.
ROLE_CHECK_TIMEOUT = 2.0


def workflow_check_deployable(*, status: str, step_count: int) -> None:
    """Raises InvalidInput (field `status`) for a deployed workflow with no steps.

    Such a workflow would match tickets and fail every one of them with `no_steps`.
    """
    if status == Workflows.Status.DEPLOYED and step_count == 0:
        raise errors.InvalidInput(
            "A workflow with no steps cannot be deployed; add steps first.", field="status"
        )


def step_check_workflow(*, step: Steps | None, workflow_id: int) -> None:
    """Raises InvalidInput (field `workflow`) when an existing step would move to another workflow.

    Moving a step could leave its deployed workflow without steps; create a new step instead.
    """
    if step is not None and step.pk is not None and step.workflow_id != workflow_id:
        raise errors.InvalidInput("A step cannot move to another workflow.", field="workflow")


def workflow_publish_version(*, workflow: Workflows) -> WorkflowVersion | None:
    """For a deployed workflow: a new version of its terms and live steps, which new tickets take.

    None, and nothing written, for a workflow that is not deployed. Tasks
    already in flight keep the version they started on.
    """
    with transaction.atomic():
        locked = Workflows.objects.select_for_update().get(pk=workflow.pk)
        if locked.status != Workflows.Status.DEPLOYED:
            return None
        number = (locked.versions.aggregate(last=Max("number"))["last"] or 0) + 1
        version = WorkflowVersion.objects.create(
            workflow=locked,
            number=number,
            **{name: getattr(locked, name) for name in WorkflowVersion.VERSIONED_FIELDS},
        )
        version.steps.set(Steps.objects.filter(workflow=locked))
        Workflows.objects.filter(pk=locked.pk).update(live_version=version)
    workflow.live_version = version
    return version


def workflow_needs_new_version(*, before: dict, workflow: Workflows) -> bool:
    """Whether a saved change to a workflow changes what new tickets follow (`before`: its values before)."""
    if workflow.status != Workflows.Status.DEPLOYED:
        return False
    if before.get("status") != Workflows.Status.DEPLOYED or workflow.live_version_id is None:
        return True
    return any(before.get(name) != getattr(workflow, name) for name in WorkflowVersion.VERSIONED_FIELDS)


def workflow_terms(workflow: Workflows) -> dict:
    return {name: getattr(workflow, name) for name in ("status", *WorkflowVersion.VERSIONED_FIELDS)}


def _in_a_version(step: Steps) -> bool:
    return WorkflowVersion.steps.through.objects.filter(steps_id=step.pk).exists()


def step_save(*, step: Steps | None, values: dict, publish: bool = True) -> Steps:
    """Create a step, or change one; returns the step as it now is.

    A step that a version holds is never changed in place: it is retired (the
    tasks on that version keep following it) and a new step with the changes
    takes its place, with a new id. With `publish`, a deployed workflow gets a
    new version.
    """
    with transaction.atomic():
        if step is None:
            saved = Steps.objects.create(**values)
        elif _in_a_version(step):
            Steps.all_objects.filter(pk=step.pk).update(retired_at=timezone.now())
            current = {
                field.name: getattr(step, field.name)
                for field in Steps._meta.concrete_fields
                if field.name not in ("step_id", "retired_at")
            }
            saved = Steps.objects.create(**{**current, **values})
        else:
            for name, value in values.items():
                setattr(step, name, value)
            step.save()
            saved = step
        if publish:
            workflow_publish_version(workflow=saved.workflow)
    return saved


def step_delete(*, step: Steps, publish: bool = True) -> None:
    """Delete a step, or retire it when a version holds it; a deployed workflow keeps at least one step."""
    with transaction.atomic():
        workflow = Workflows.objects.select_for_update().get(pk=step.workflow_id)
        if is_last_step_of_deployed_workflow(step=step, workflow=workflow):
            raise errors.InvalidTransition(
                f"Step {step.step_id} is the last step of deployed workflow {workflow.name!r}"
            )
        if _in_a_version(step):
            Steps.all_objects.filter(pk=step.pk).update(retired_at=timezone.now())
        else:
            step.delete()
        if publish:
            workflow_publish_version(workflow=workflow)


def is_last_step_of_deployed_workflow(*, step: Steps, workflow: Workflows | None = None) -> bool:
    """Whether deleting the step would leave a deployed workflow with no steps."""
    workflow = workflow or step.workflow
    return workflow.status == Workflows.Status.DEPLOYED and workflow.steps.count() <= 1


def workflow_warnings(*, workflow: Workflows) -> list[str]:
    """What about a saved workflow is legal but probably not meant: never blocks a save.

    A deployed workflow that is not published never matches a ticket, and of two
    live workflows with the same route only the older one ever matches.
    """
    warnings = []
    if workflow.status == Workflows.Status.DEPLOYED and not workflow.is_published:
        warnings.append(
            f"Workflow {workflow.name!r} is deployed but not published: no ticket will match it "
            "until it is published too."
        )
    if is_live(workflow):
        same_route = (
            Workflows.objects.filter(
                department=workflow.department,
                category=workflow.category,
                sub_category=workflow.sub_category,
                is_published=True,
                status=Workflows.Status.DEPLOYED,
            )
            .exclude(pk=workflow.pk)
            .order_by("workflow_id")
        )
        others = list(same_route.values_list("workflow_id", "name"))
        if others:
            oldest_id = min([workflow.pk, *(pk for pk, _ in others)])
            names = ", ".join(repr(name) for _, name in others)
            winner = "this one" if oldest_id == workflow.pk else "the oldest of them"
            warnings.append(
                f"Workflow {workflow.name!r} has the same route as live workflow(s) {names}: "
                f"tickets go to {winner} (lowest id) only."
            )
    return warnings


def is_live(workflow: Workflows) -> bool:
    """Whether tickets can match the workflow: published and deployed."""
    return workflow.is_published and workflow.status == Workflows.Status.DEPLOYED


def role_warnings(*, role: Roles) -> list[str]:
    """What TTS says against a role's name, asked with a short timeout; never blocks a save.

    TTS answers a role it does not know with an empty list, exactly as a known
    role without users, so the warning says both.
    """
    try:
        user_ids = tts.get_role_user_ids(role.name, timeout=ROLE_CHECK_TIMEOUT)
    except errors.DependencyUnavailable as exc:
        return [f"Could not check role {role.name!r} with TTS ({exc.message}); allocation will ask again."]
    if not user_ids:
        return [
            f"TTS lists no users for role {role.name!r}: either it has no users, or TTS does not know "
            "a role by exactly this name (capitals count). Tickets reaching its steps will fail "
            "with no_users."
        ]
    return []
