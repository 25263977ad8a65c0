import pytest
import requests

from conftest import make_workflow
from task.models import Task
from tickets import tasks
from tickets.models import WorkflowTicket
from workflow.models import Roles

pytestmark = pytest.mark.django_db

Reason = WorkflowTicket.AllocationError


@pytest.fixture
def ticket(db) -> WorkflowTicket:
    return WorkflowTicket.objects.create(
        ticket_number="TX100",
        subject="VPN down",
        department="IT Department",
        category="IT Support",
        sub_category="Technical Assistance",
    )


def _create(ticket_id: int) -> dict:
    return tasks.create_task_for_ticket.delay(ticket_id).get()


def test_creates_task_on_first_step_with_round_robin_users_and_allocates_ticket(tts, role, ticket):
    manager = Roles.objects.create(name="Manager")
    workflow = make_workflow(sub_category="Technical Assistance", steps=[role, manager])
    tts.role(role.name, [3, 6, 7, 8])

    result = _create(ticket.pk)

    task = Task.objects.get()
    assert result == {
        "status": "success",
        "ticket_id": ticket.pk,
        "task_id": task.task_id,
        "action": "created",
    }
    assert task.workflow == workflow
    assert task.current_step.order == 1
    assert task.status == Task.Status.PENDING
    assert [(u["userID"], u["role"], u["status"]) for u in task.users] == [
        (3, role.name, "assigned"),
        (6, role.name, "assigned"),
        (7, role.name, "assigned"),
    ]
    ticket.refresh_from_db()
    assert ticket.is_task_allocated
    assert ticket.allocation_failure_reason == ""


def test_calling_again_for_an_allocated_ticket_returns_the_existing_task(tts, workflow, ticket):
    tts.role("IT Support Technician", [3])
    first = _create(ticket.pk)

    second = _create(ticket.pk)

    assert second["task_id"] == first["task_id"]
    assert second["action"] == "existing"
    assert Task.objects.count() == 1
    assert tts.calls == 1


def test_no_matching_workflow_is_an_error_and_the_reason_is_recorded(tts, ticket):
    make_workflow(department="HR Department", steps=[Roles.objects.create(name="HR")])

    result = _create(ticket.pk)

    assert result["status"] == "error"
    assert result["error"] == "no_workflow"
    ticket.refresh_from_db()
    assert not ticket.is_task_allocated
    assert ticket.allocation_error == Reason.NO_WORKFLOW
    assert "No deployed workflow" in ticket.allocation_failure_reason
    assert not Task.objects.exists()
    assert tts.calls == 0


def test_workflow_without_steps_is_an_error(tts, ticket):
    make_workflow(steps=[])

    result = _create(ticket.pk)

    assert result["error"] == "no_steps"
    ticket.refresh_from_db()
    assert ticket.allocation_error == Reason.NO_STEPS
    assert not Task.objects.exists()


def test_role_without_users_is_an_error(tts, workflow, ticket):
    tts.role("IT Support Technician", [])

    result = _create(ticket.pk)

    assert result["error"] == "no_users"
    ticket.refresh_from_db()
    assert not ticket.is_task_allocated
    assert ticket.allocation_error == Reason.NO_USERS
    assert not Task.objects.exists()


def test_unknown_ticket_is_a_not_found_error(db):
    result = _create(999_999)

    assert result["status"] == "error"
    assert result["error"] == "not_found"


def test_unreachable_tts_is_retried_then_recorded_as_unavailable(tts, workflow, ticket, settings):
    settings.ALLOCATION_MAX_RETRIES = 2
    tts.fail("IT Support Technician", body=requests.ConnectionError("refused"))

    result = _create(ticket.pk)

    assert tts.calls == 3  # the first try and two retries
    assert result["error"] == "tts_unavailable"
    ticket.refresh_from_db()
    assert not ticket.is_task_allocated
    assert ticket.allocation_error == Reason.TTS_UNAVAILABLE
    assert ticket.allocation_attempts == 1
    assert "gave up after 2 retries" in ticket.allocation_failure_reason


def test_malformed_tts_answer_is_a_final_failure_without_retries(tts, workflow, ticket):
    tts.fail("IT Support Technician", status=200, body="<html>login</html>")

    result = _create(ticket.pk)

    assert tts.calls == 1
    assert result["error"] == "tts_bad_response"
    ticket.refresh_from_db()
    assert ticket.allocation_error == Reason.TTS_BAD_RESPONSE


def test_a_later_successful_allocation_clears_the_recorded_failure(tts, workflow, ticket):
    tts.role("IT Support Technician", [])
    _create(ticket.pk)
    tts.mock.reset()
    tts.role("IT Support Technician", [6])

    result = _create(ticket.pk)

    assert result["status"] == "success"
    ticket.refresh_from_db()
    assert ticket.is_task_allocated
    assert ticket.allocation_error == ""


def test_sweeper_reenqueues_transient_failures_and_lost_tickets_only(tts, workflow, settings):
    settings.ALLOCATION_STALE_SECONDS = 0
    make = WorkflowTicket.objects.create
    transient = make(ticket_number="T1", subject="s", allocation_error=Reason.TTS_UNAVAILABLE)
    exhausted = make(
        ticket_number="T2",
        subject="s",
        allocation_error=Reason.TTS_UNAVAILABLE,
        allocation_attempts=settings.ALLOCATION_MAX_ATTEMPTS,
    )
    never_ran = make(ticket_number="T3", subject="s")
    final = make(ticket_number="T4", subject="s", allocation_error=Reason.NO_WORKFLOW)
    for lost in (transient, exhausted, never_ran, final):
        WorkflowTicket.objects.filter(pk=lost.pk).update(department="IT Department", category="IT Support")
    tts.role("IT Support Technician", [3])

    result = tasks.allocate_pending_tickets.delay().get()

    assert result["enqueued"] == 2
    allocated = set(WorkflowTicket.objects.filter(is_task_allocated=True).values_list("pk", flat=True))
    assert allocated == {transient.pk, never_ran.pk}
    exhausted.refresh_from_db()
    assert exhausted.allocation_failure_reason.startswith("TTS service unavailable")


def test_an_unexpected_error_is_recorded_on_the_ticket_and_raised(tts, workflow, ticket, monkeypatch):
    from task import services as task_services

    def broken(**kwargs):
        raise ZeroDivisionError("a defect")

    monkeypatch.setattr(task_services, "task_create_for_ticket", broken)

    with pytest.raises(ZeroDivisionError):
        _create(ticket.pk)

    ticket.refresh_from_db()
    assert not ticket.is_task_allocated
    assert ticket.allocation_error == Reason.INTERNAL_ERROR
    assert ticket.allocation_failure_reason == "Unexpected error (see the worker's log): ZeroDivisionError"
