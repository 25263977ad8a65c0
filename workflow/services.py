"""Rules on changing workflow configuration, and the versions that keep tasks in flight on their steps."""

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from workflow.models import Steps, Workflows, WorkflowVersion
from workflow_api import errors


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
