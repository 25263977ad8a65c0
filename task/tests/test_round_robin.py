import re
from collections import Counter

import pytest

from task.models import RoundRobinState
from task.services import apply_round_robin_assignment

pytestmark = pytest.mark.django_db

ROLE = "IT Support Technician"


def _ids(assignments: list[dict]) -> list[int]:
    return [entry["userID"] for entry in assignments]


def test_spec_example_three_users_with_default_max_assigns_all_three_every_time():
    assert _ids(apply_round_robin_assignment([3, 6, 7], ROLE)) == [3, 6, 7]
    assert _ids(apply_round_robin_assignment([3, 6, 7], ROLE)) == [3, 6, 7]
    assert RoundRobinState.objects.get(role_name=ROLE).next_index == 0


def test_spec_example_with_max_one_rotates_through_users_and_wraps():
    picks = [_ids(apply_round_robin_assignment([3, 6, 7], ROLE, max_assignments=1)) for _ in range(4)]

    assert picks == [[3], [6], [7], [3]]
    assert RoundRobinState.objects.get(role_name=ROLE).next_index == 1


def test_each_role_keeps_its_own_rotation():
    apply_round_robin_assignment([3, 6, 7], ROLE, max_assignments=1)

    assert _ids(apply_round_robin_assignment([11, 12], "Manager", max_assignments=1)) == [11]
    assert _ids(apply_round_robin_assignment([3, 6, 7], ROLE, max_assignments=1)) == [6]


def test_rotation_is_fair_when_users_outnumber_assignments():
    counts = Counter()
    for _ in range(70):
        counts.update(_ids(apply_round_robin_assignment(list(range(1, 8)), ROLE)))

    assert counts == {user_id: 30 for user_id in range(1, 8)}


def test_state_lives_in_the_database_so_a_new_process_continues_the_rotation():
    apply_round_robin_assignment([3, 6, 7], ROLE, max_assignments=1)
    RoundRobinState.objects.filter(role_name=ROLE).update(next_index=2)  # as another worker left it

    assert _ids(apply_round_robin_assignment([3, 6, 7], ROLE, max_assignments=1)) == [7]


def test_a_shrunken_user_list_wraps_the_stored_index():
    apply_round_robin_assignment(list(range(1, 11)), ROLE, max_assignments=8)

    # The stored index is 8; with three users it continues at 8 % 3 == 2.
    assert _ids(apply_round_robin_assignment([3, 6, 7], ROLE, max_assignments=1)) == [7]


def test_assignment_objects_have_the_spec_shape_with_utc_timestamp():
    (entry,) = apply_round_robin_assignment([3], ROLE)

    assert set(entry) == {"userID", "status", "assigned_on", "role"}
    assert entry["userID"] == 3
    assert entry["status"] == "assigned"
    assert entry["role"] == ROLE
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["assigned_on"])


def test_no_users_gives_no_assignments_and_keeps_no_state():
    assert apply_round_robin_assignment([], ROLE) == []
    assert not RoundRobinState.objects.exists()
