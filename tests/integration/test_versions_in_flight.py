"""A workflow edited while tickets flow through real workers: old tasks keep old steps, new ones take new."""

import pytest

from conftest import make_workflow, ticket_payload
from task import services as task_services
from task.models import Task
from tests.integration.conftest import ROLE, SEVEN_USERS, wait_until
from workflow import services as workflow_services
from workflow.models import Roles, Steps, Workflows

pytestmark = pytest.mark.integration


def _task(number: str) -> Task | None:
    return Task.objects.select_related("workflow_version").filter(ticket__ticket_number=number).first()


def _complete_first_assignee(task: Task) -> Task:
    return task_services.task_update_user_status(
        task_id=task.pk, user_id=task.get_assigned_user_ids()[0], new_status="completed"
    )


def test_an_edit_mid_flight_leaves_old_tasks_on_old_steps_and_any_moves_each_on_by_itself(
    cluster, broker, fake_tts, settings
):
    settings.TTS_SERVICE_URL = fake_tts.url  # completions here, in the test process, move tasks on
    technicians = Roles.objects.create(name=ROLE)
    managers = Roles.objects.create(name="Manager")
    admins = Roles.objects.create(name="Admins")
    fake_tts.state.configure({"roles": {ROLE: SEVEN_USERS, "Manager": [11, 12], "Admins": [21]}})
    workflow = make_workflow(steps=[technicians, managers], status=Workflows.Status.DRAFT)
    Steps.objects.filter(workflow=workflow, order=1).update(completion_policy="any")
    Workflows.objects.filter(pk=workflow.pk).update(status=Workflows.Status.DEPLOYED)
    workflow_services.workflow_publish_version(workflow=workflow)
    cluster.start("alpha", concurrency=2)

    broker.send_ticket(ticket_payload("TX-OLD"))
    old = wait_until(lambda: _task("TX-OLD"), timeout=30, what="the first ticket's task")
    workflow_services.step_save(step=workflow.steps.get(order=2), values={"role": admins})
    broker.send_ticket(ticket_payload("TX-NEW"))
    new = wait_until(lambda: _task("TX-NEW"), timeout=30, what="the second ticket's task")

    assert (old.workflow_version.number, new.workflow_version.number) == (1, 2)
    old, new = _complete_first_assignee(old), _complete_first_assignee(new)
    assert (old.current_step.role.name, new.current_step.role.name) == ("Manager", "Admins")
    assert old.get_assigned_user_ids() == [11, 12]
    assert new.get_assigned_user_ids() == [21]
