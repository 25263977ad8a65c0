"""Rules on changing workflow configuration."""

from django.db import transaction

from workflow.models import Steps, Workflows
from workflow_api import errors


def step_delete(*, step: Steps) -> None:
    """Delete a step; refuses to leave a deployed workflow with no steps."""
    with transaction.atomic():
        workflow = Workflows.objects.select_for_update().get(pk=step.workflow_id)
        if is_last_step_of_deployed_workflow(step=step, workflow=workflow):
            raise errors.InvalidTransition(
                f"Step {step.step_id} is the last step of deployed workflow {workflow.name!r}"
            )
        step.delete()


def is_last_step_of_deployed_workflow(*, step: Steps, workflow: Workflows | None = None) -> bool:
    """Whether deleting the step would leave a deployed workflow with no steps."""
    workflow = workflow or step.workflow
    return workflow.status == Workflows.Status.DEPLOYED and workflow.steps.count() <= 1
