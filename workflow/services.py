"""Rules on changing workflow configuration."""

from django.db import transaction

from workflow.models import Steps, Workflows
from workflow_api import errors


def step_delete(*, step: Steps) -> None:
    """Delete a step; refuses to leave a deployed workflow with no steps."""
    with transaction.atomic():
        workflow = Workflows.objects.select_for_update().get(pk=step.workflow_id)
        if workflow.status == Workflows.Status.DEPLOYED and workflow.steps.count() <= 1:
            raise errors.InvalidTransition(
                f"Step {step.step_id} is the last step of deployed workflow {workflow.name!r}"
            )
        step.delete()
