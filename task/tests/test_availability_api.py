"""Availability through the API and admin: callers set their own status, staff set anyone's and capacity."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from conftest import client_as
from task import services
from task.models import Assignment, AvailabilityChange, UserAvailability
from task.tests.conftest import assignment, make_task

pytestmark = pytest.mark.django_db

AVAILABILITY = "/tasks/api/availability/"


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_user_never_set_reads_as_available_without_limit():
    response = client_as(3).get(f"{AVAILABILITY}3/")

    assert response.status_code == 200
    assert response.json() == {
        "user_id": 3,
        "status": "available",
        "effective_status": "available",
        "until": None,
        "max_open_assignments": None,
        "open_assignments": 0,
        "updated_at": None,
        "started_assignments": [],
    }
    assert not UserAvailability.objects.exists()


def test_a_caller_sets_their_own_status_and_until_and_the_change_is_recorded():
    until = timezone.now() + timedelta(days=2)

    response = client_as(3).put(f"{AVAILABILITY}3/", {"status": "away", "until": _iso(until)}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["effective_status"]) == ("away", "away")
    assert body["until"] is not None
    (change,) = AvailabilityChange.objects.filter(user_id=3)
    assert change.changed_by == "3"
    assert change.changes["status"] == ["available", "away"]


def test_only_the_fields_sent_change():
    client = client_as(3)
    client.put(f"{AVAILABILITY}3/", {"status": "away"}, format="json")

    response = client.put(
        f"{AVAILABILITY}3/", {"until": _iso(timezone.now() + timedelta(hours=1))}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "away"
    assert response.json()["until"] is not None


def test_once_until_has_passed_the_user_is_effectively_available(api_client):
    UserAvailability.objects.create(
        user_id=3, status=UserAvailability.Status.UNAVAILABLE, until=timezone.now() - timedelta(minutes=1)
    )

    body = api_client.get(f"{AVAILABILITY}3/").json()

    assert (body["status"], body["effective_status"]) == ("unavailable", "available")


def test_a_caller_may_not_set_their_own_capacity():
    response = client_as(3).put(
        f"{AVAILABILITY}3/", {"status": "away", "max_open_assignments": 9}, format="json"
    )

    assert response.status_code == 403
    assert not UserAvailability.objects.exists()


def test_a_caller_may_neither_read_nor_set_someone_elses_availability():
    client = client_as(3)

    assert client.get(f"{AVAILABILITY}6/").status_code == 403
    assert client.put(f"{AVAILABILITY}6/", {"status": "away"}, format="json").status_code == 403
    assert client.get(f"{AVAILABILITY}6/changes/").status_code == 403
    assert not UserAvailability.objects.exists()


def test_staff_set_anyones_capacity_and_see_their_open_and_started_work(api_client, task):
    services.task_update_user_status(task_id=task.pk, user_id=3, new_status=Assignment.Status.IN_PROGRESS)

    response = api_client.put(f"{AVAILABILITY}3/", {"max_open_assignments": 4}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["max_open_assignments"] == 4
    assert body["open_assignments"] == 1
    assert body["started_assignments"] == [
        {"task_id": task.pk, "step_id": task.current_step_id, "role": "IT Support Technician"}
    ]
    assert AvailabilityChange.objects.get(user_id=3).changed_by == "1"


def test_staff_clear_a_capacity_with_null(api_client):
    api_client.put(f"{AVAILABILITY}3/", {"max_open_assignments": 2}, format="json")

    response = api_client.put(f"{AVAILABILITY}3/", {"max_open_assignments": None}, format="json")

    assert response.json()["max_open_assignments"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "asleep"}, "status"),
        ({"until": "2020-01-01T00:00:00Z"}, "until"),
        ({"until": "next tuesday"}, "until"),
        ({"max_open_assignments": -1}, "max_open_assignments"),
        ({"max_open_assignments": 2**31}, "max_open_assignments"),
    ],
)
def test_bad_availability_input_is_a_field_error(api_client, body, field):
    response = api_client.put(f"{AVAILABILITY}3/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not UserAvailability.objects.exists()


@pytest.mark.parametrize("user_id", ["0", "9223372036854775808", "99999999999999999999999", "-3", "abc"])
def test_a_user_id_outside_the_id_range_is_not_found(api_client, user_id):
    assert api_client.get(f"{AVAILABILITY}{user_id}/").status_code == 404
    assert api_client.put(f"{AVAILABILITY}{user_id}/", {"status": "away"}, format="json").status_code == 404


def test_the_largest_user_id_is_accepted(api_client):
    response = api_client.put(f"{AVAILABILITY}{2**63 - 1}/", {"status": "away"}, format="json")

    assert response.status_code == 200
    assert response.json()["user_id"] == 2**63 - 1


def test_staff_list_everyone_set_with_their_open_work(api_client, task):
    api_client.put(f"{AVAILABILITY}6/", {"status": "unavailable"}, format="json")
    api_client.put(f"{AVAILABILITY}9/", {"max_open_assignments": 5}, format="json")

    response = api_client.get(AVAILABILITY)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(item["user_id"], item["status"]) for item in body["results"]] == [
        (6, "unavailable"),
        (9, "available"),
    ]
    assert [item["open_assignments"] for item in body["results"]] == [1, 0]


def test_only_staff_list_availability():
    assert client_as(3).get(AVAILABILITY).status_code == 403


def test_a_users_changes_are_listed_oldest_first():
    client = client_as(3)
    client.put(f"{AVAILABILITY}3/", {"status": "away"}, format="json")
    client.put(f"{AVAILABILITY}3/", {"status": "available"}, format="json")

    response = client.get(f"{AVAILABILITY}3/changes/")

    assert response.status_code == 200
    changes = [item["changes"]["status"] for item in response.json()["results"]]
    assert changes == [["available", "away"], ["away", "available"]]


@pytest.fixture
def admin_user(db) -> User:
    return User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_an_availability_saved_in_admin_is_recorded_as_that_admins_change(admin_client, admin_user):
    response = admin_client.post(
        "/admin/task/useravailability/add/",
        {"user_id": 3, "status": "unavailable", "until": "", "max_open_assignments": 2},
    )

    assert response.status_code == 302
    row = UserAvailability.objects.get(user_id=3)
    assert (row.status, row.max_open_assignments) == ("unavailable", 2)
    (change,) = AvailabilityChange.objects.filter(user_id=3)
    assert change.changed_by == f"admin:{admin_user.pk}"
    assert change.changes == {"status": ["available", "unavailable"], "max_open_assignments": [None, 2]}


def test_admin_refuses_an_until_in_the_past(admin_client):
    UserAvailability.objects.create(user_id=3)

    response = admin_client.post(
        "/admin/task/useravailability/3/change/",
        {"status": "away", "until_0": "2020-01-01", "until_1": "10:00:00", "max_open_assignments": ""},
    )

    assert response.status_code == 200  # the form again, with its error
    assert UserAvailability.objects.get(user_id=3).status == "available"
    assert not AvailabilityChange.objects.exists()


def test_becoming_unavailable_through_the_api_moves_not_started_work(
    api_client, two_step_workflow, tts, django_capture_on_commit_callbacks
):
    task = make_task(two_step_workflow, users=[assignment(3)])
    tts.role("IT Support Technician", [3, 6, 7])

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.put(f"{AVAILABILITY}3/", {"status": "unavailable"}, format="json")

    assert response.status_code == 200
    task.refresh_from_db()
    assert task.get_assigned_user_ids() == [6]


def test_availability_is_set_with_json_only(api_client):
    response = api_client.put(f"{AVAILABILITY}3/", {"status": "away"}, format="multipart")

    assert response.status_code == 415
    assert not UserAvailability.objects.exists()


def test_an_availability_changed_in_admin_changes_only_what_the_form_changed(admin_client, admin_user):
    services.availability_set(user_id=3, actor="system", status="away", max_open_assignments=4)

    response = admin_client.post(
        "/admin/task/useravailability/3/change/",
        {"status": "unavailable", "until_0": "", "until_1": "", "max_open_assignments": "4"},
    )

    assert response.status_code == 302
    row = UserAvailability.objects.get(user_id=3)
    assert (row.status, row.max_open_assignments) == ("unavailable", 4)
    latest = AvailabilityChange.objects.filter(user_id=3).latest("id")
    assert (latest.changed_by, latest.changes) == (
        f"admin:{admin_user.pk}",
        {"status": ["away", "unavailable"]},
    )
