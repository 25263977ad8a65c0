"""Assignments as rows: availability, reassignment, waiting tickets, history and the load counters."""

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from conftest import make_task, make_workflow, ticket_payload
from task import services
from task.models import AssigneeLoad, Assignment, AvailabilityChange, Task, TaskEvent, UserAvailability
from tickets import tasks
from tickets.models import WorkflowTicket
from workflow.models import Roles
from workflow_api import errors

pytestmark = pytest.mark.django_db

ROLE = "IT Support Technician"


def _receive(number: str, capture) -> dict:
    with capture(execute=True):
        return tasks.receive_ticket.delay(ticket_payload(number)).get()


def _assigned(number: str) -> list[int]:
    return Task.objects.get(ticket__ticket_number=number).get_assigned_user_ids()


def _loads() -> dict[int, int]:
    return dict(AssigneeLoad.objects.filter(role=ROLE).values_list("user_id", "open_assignments"))


def _recount() -> dict[int, int]:
    counts: dict[int, int] = {}
    for user_id in Assignment.objects.filter(is_open=True, role=ROLE).values_list("user_id", flat=True):
        counts[user_id] = counts.get(user_id, 0) + 1
    return counts


def test_a_new_tickets_decision_is_recorded_with_strategy_candidates_and_position(
    tts, workflow, django_capture_on_commit_callbacks
):
    tts.role(ROLE, [3, 6, 7])

    _receive("TX1", django_capture_on_commit_callbacks)

    (event,) = TaskEvent.objects.all()
    decision = event.details["decision"]
    assert event.kind == "assigned"
    assert event.actor == "system"
    assert decision["trigger"] == "new_ticket"
    assert decision["strategy"] == "round_robin"
    assert decision["candidates"]["count"] == 3
    assert decision["position"] == 0
    assert decision["chosen"] == [3, 6, 7]
    assert Assignment.objects.filter(origin="round_robin").count() == 3


def test_an_unavailable_user_is_skipped_and_the_skip_recorded(
    tts, workflow, settings, django_capture_on_commit_callbacks
):
    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = 1
    tts.role(ROLE, [3, 6, 7])
    services.availability_set(user_id=3, actor="3", status="unavailable")

    _receive("TX1", django_capture_on_commit_callbacks)
    _receive("TX2", django_capture_on_commit_callbacks)

    assert (_assigned("TX1"), _assigned("TX2")) == ([6], [7])
    first = TaskEvent.objects.get(task__ticket__ticket_number="TX1").details["decision"]
    assert first["skipped"] == [[3, "unavailable"]]


def test_nobody_available_leaves_the_ticket_waiting_without_a_retry_then_availability_allocates_it(
    tts, workflow, django_capture_on_commit_callbacks
):
    tts.role(ROLE, [3])
    services.availability_set(user_id=3, actor="3", status="unavailable")

    result = _receive("TX1", django_capture_on_commit_callbacks)

    ticket = WorkflowTicket.objects.get()
    assert result["action"] == "created"
    assert not ticket.is_task_allocated
    assert ticket.allocation_error == "no_available_users"
    assert "1 unavailable" in ticket.allocation_error_detail
    assert ticket.allocation_attempts == 1
    assert tts.calls == 1  # no Celery retry

    with django_capture_on_commit_callbacks(execute=True):
        services.availability_set(user_id=3, actor="3", status="available")

    ticket.refresh_from_db()
    assert ticket.is_task_allocated
    assert ticket.allocation_attempts == 1  # waiting costs no attempt
    assert _assigned("TX1") == [3]


def test_waiting_tickets_of_a_role_are_served_first_in_first_out(
    tts, workflow, settings, django_capture_on_commit_callbacks
):
    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = 1
    tts.role(ROLE, [3])
    services.availability_set(user_id=3, actor="1", max_open_assignments=1)
    _receive("TX1", django_capture_on_commit_callbacks)
    _receive("TX2", django_capture_on_commit_callbacks)
    _receive("TX3", django_capture_on_commit_callbacks)
    assert list(
        WorkflowTicket.objects.filter(is_task_allocated=False).values_list("ticket_number", flat=True)
    ) == [
        "TX3",
        "TX2",
    ]

    with django_capture_on_commit_callbacks(execute=True):
        services.task_complete(task_id=Task.objects.get().pk)

    assert WorkflowTicket.objects.get(ticket_number="TX2").is_task_allocated
    assert not WorkflowTicket.objects.get(ticket_number="TX3").is_task_allocated


def test_a_user_becoming_unavailable_hands_not_started_work_on_and_keeps_started_work(
    tts, workflow, settings, django_capture_on_commit_callbacks
):
    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = 1
    tts.role(ROLE, [3, 6, 7])
    _receive("TX1", django_capture_on_commit_callbacks)  # 3
    _receive("TX2", django_capture_on_commit_callbacks)  # 6
    _receive("TX3", django_capture_on_commit_callbacks)  # 7
    _receive("TX4", django_capture_on_commit_callbacks)  # 3
    started = Task.objects.get(ticket__ticket_number="TX4")
    services.task_update_user_status(task_id=started.pk, user_id=3, new_status="in_progress")

    with django_capture_on_commit_callbacks(execute=True):
        services.availability_set(user_id=3, actor="1", status="unavailable")

    assert _assigned("TX1") == [6]  # the next eligible user after 3 in the rotation
    assert _assigned("TX4") == [3]
    assert services.availability_started_assignments(user_id=3) == [
        {"task_id": started.pk, "step_id": started.current_step_id, "role": ROLE}
    ]
    moved = Assignment.objects.get(task__ticket__ticket_number="TX1", user_id=3)
    assert not moved.is_current and not moved.is_open
    event = TaskEvent.objects.get(task__ticket__ticket_number="TX1", kind="reassigned")
    assert (event.details["from_user_id"], event.details["to_user_id"]) == (3, 6)
    assert event.details["decision"]["chosen"] == [6]
    assert _loads() == _recount() == {3: 1, 6: 2, 7: 1}


def test_when_nobody_can_take_the_work_it_stays_and_the_history_says_why(
    tts, workflow, django_capture_on_commit_callbacks
):
    tts.role(ROLE, [3])
    _receive("TX1", django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        services.availability_set(user_id=3, actor="1", status="unavailable")

    assert _assigned("TX1") == [3]
    event = TaskEvent.objects.get(kind="reassigned")
    assert event.details["outcome"] == "kept"
    assert "1 unavailable" in event.details["reason"]


def test_staff_reassignment_to_a_named_user_checks_the_role(
    tts, workflow, django_capture_on_commit_callbacks
):
    tts.role(ROLE, [3, 6, 7, 9])
    _receive("TX1", django_capture_on_commit_callbacks)
    task = Task.objects.get()

    with pytest.raises(errors.InvalidInput, match="not in role"):
        services.task_reassign(task_id=task.pk, from_user_id=3, to_user_id=42, actor="1")
    with pytest.raises(errors.InvalidInput, match="already assigned"):
        services.task_reassign(task_id=task.pk, from_user_id=3, to_user_id=6, actor="1")

    services.task_reassign(task_id=task.pk, from_user_id=3, to_user_id=9, actor="1")
    assert Task.objects.get().get_assigned_user_ids() == [6, 7, 9]
    assert Assignment.objects.get(user_id=9).origin == "reassigned"


def test_availability_changes_are_recorded_with_who_when_and_from_what_to_what():
    until = timezone.now() + timedelta(hours=2)

    services.availability_set(user_id=5, actor="5", status="away", until=until)
    services.availability_set(user_id=5, actor="admin:1", max_open_assignments=4)
    services.availability_set(user_id=5, actor="5", status="away", until=until)  # no change: not recorded

    first, second = AvailabilityChange.objects.filter(user_id=5)
    assert first.changed_by == "5"
    assert first.changes == {"status": ["available", "away"], "until": [None, until.isoformat()]}
    assert second.changes == {"max_open_assignments": [None, 4]}


def test_moving_to_the_next_step_records_the_move_and_frees_the_previous_assignees(
    tts, settings, django_capture_on_commit_callbacks
):
    settings.ROUND_ROBIN_MAX_ASSIGNMENTS = 1
    manager = Roles.objects.create(name="Manager")
    make_workflow(steps=[Roles.objects.create(name=ROLE), manager])
    tts.role(ROLE, [3])
    tts.role("Manager", [11, 12])
    _receive("TX1", django_capture_on_commit_callbacks)
    task = Task.objects.get()

    services.task_move_to_next_step(task_id=task.pk, actor="1")

    task = Task.objects.get()
    assert task.users[0]["userID"] == 11 and task.users[0]["role"] == "Manager"
    assert [event.kind for event in task.events.order_by("id")] == ["assigned", "moved", "assigned"]
    assert _loads() == {3: 0}
    # The past assignee still sees the task: they held an assignment on it.
    assert Assignment.objects.filter(task=task, user_id=3, is_current=False).exists()


def test_load_counters_equal_a_full_recount_after_a_mixed_workload(
    tts, workflow, django_capture_on_commit_callbacks
):
    tts.role(ROLE, [3, 6, 7, 9])
    for n in range(8):
        _receive(f"TX{n}", django_capture_on_commit_callbacks)
    first, second, third, fourth = Task.objects.order_by("task_id")[:4]
    services.task_update_user_status(
        task_id=first.pk, user_id=first.get_assigned_user_ids()[0], new_status="completed"
    )
    services.task_update_user_status(
        task_id=second.pk, user_id=second.get_assigned_user_ids()[1], new_status="in_progress"
    )
    services.task_complete(task_id=third.pk)
    services.task_assign_user(task_id=fourth.pk, user_data={"userID": 50, "role": ROLE})
    services.task_reassign(task_id=fourth.pk, from_user_id=fourth.get_assigned_user_ids()[0], actor="1")
    with django_capture_on_commit_callbacks(execute=True):
        services.availability_set(user_id=9, actor="1", status="unavailable")

    assert _loads() == {**{user: 0 for user in _loads()}, **_recount()}
    assert AssigneeLoad.objects.aggregate(total=Sum("open_assignments"))["total"] == sum(_recount().values())


def test_a_task_shows_only_its_current_steps_assignees_as_users(two_roles_task):
    assert [entry["userID"] for entry in two_roles_task.users] == [3]


@pytest.fixture
def two_roles_task(workflow):
    task = make_task(workflow, users=[{"userID": 3}, {"userID": 6}])
    Assignment.objects.filter(task=task, user_id=6).update(is_current=False)
    return Task.objects.get(pk=task.pk)


def test_an_until_that_has_passed_is_noticed_by_the_sweeper_which_allocates_the_waiting_ticket(
    tts, workflow, django_capture_on_commit_callbacks
):
    tts.role(ROLE, [3])
    services.availability_set(
        user_id=3, actor="3", status="unavailable", until=timezone.now() + timedelta(hours=1)
    )
    _receive("TX1", django_capture_on_commit_callbacks)
    assert WorkflowTicket.objects.get().allocation_error == "no_available_users"
    # The hour passes.
    UserAvailability.objects.filter(user_id=3).update(until=timezone.now() - timedelta(seconds=1))

    tasks.allocate_pending_tickets.delay().get()

    assert WorkflowTicket.objects.get().is_task_allocated
    assert _assigned("TX1") == [3]
