"""The assignment engine's rules, as a pure function of the candidates and the role's state."""

from datetime import UTC, datetime, timedelta

from task.assignment import Availability, RoleState, decide, simulate

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
ROLE = "Agent"


def _next(strategy: str, candidates: list[int], take: int, state: RoleState, **kwargs):
    return decide(strategy=strategy, candidates=candidates, take=take, state=state, now=NOW, **kwargs)


def _run(strategy: str, candidates: list[int], take: int, times: int, state: RoleState | None = None):
    decisions = simulate(
        strategy=strategy,
        candidates=candidates,
        take=take,
        state=state or RoleState(ROLE),
        now=NOW,
        count=times,
    )
    return [list(decision.chosen) for decision in decisions]


def test_round_robin_keeps_the_specs_examples():
    assert _run("round_robin", [3, 6, 7], 3, 2) == [[3, 6, 7], [3, 6, 7]]
    assert _run("round_robin", [3, 6, 7], 1, 4) == [[3], [6], [7], [3]]


def test_an_unavailable_user_is_skipped_without_consuming_a_turn():
    state = RoleState(ROLE, availability={6: Availability("unavailable")})

    first = _next("round_robin", [3, 6, 7], 1, state)
    second = _next(
        "round_robin",
        [3, 6, 7],
        1,
        RoleState(ROLE, cursor=first.next_cursor, availability=state.availability),
    )

    assert first.chosen == (3,)
    assert second.chosen == (7,)
    assert second.skipped == ((6, "unavailable"),)
    # The rotation continues after 7, with 3: 6's turn was not lost by anyone else.
    assert second.next_cursor == 0


def test_unavailability_ends_when_until_has_passed():
    state = RoleState(ROLE, availability={3: Availability("unavailable", until=NOW - timedelta(minutes=1))})

    assert _next("round_robin", [3, 6], 1, state).chosen == (3,)


def test_away_users_are_chosen_only_when_no_available_user_is_eligible():
    away_three = {3: Availability("away"), 6: Availability("away")}

    with_one_available = _next("round_robin", [3, 6, 7], 3, RoleState(ROLE, availability=away_three))
    nobody_available = _next("round_robin", [3, 6], 2, RoleState(ROLE, availability={**away_three}))

    assert with_one_available.chosen == (7,)
    assert (3, "away") in with_one_available.skipped
    assert nobody_available.chosen == (3, 6)
    assert nobody_available.fell_back_to_away


def test_users_at_capacity_are_skipped_counting_open_work_in_every_role():
    state = RoleState(
        ROLE, availability={3: Availability("available", max_open=2)}, role_loads={3: 1}, total_loads={3: 2}
    )

    decision = _next("round_robin", [3, 6], 1, state)

    assert decision.chosen == (6,)
    assert decision.skipped == ((3, "at_capacity"),)


def test_users_already_on_the_step_are_skipped():
    decision = _next("round_robin", [3, 6, 7], 1, RoleState(ROLE), exclude=frozenset({3}))

    assert decision.chosen == (6,)
    assert decision.skipped == ((3, "already_assigned"),)


def test_nobody_eligible_is_a_waiting_decision_with_reasons():
    state = RoleState(ROLE, availability={3: Availability("unavailable"), 6: Availability("unavailable")})

    decision = _next("load_balanced", [3, 6], 1, state)

    assert decision.waiting
    assert decision.chosen == ()
    assert "2 unavailable" in decision.waiting_reason()
    assert decision.next_cursor == state.cursor


def test_load_balanced_takes_the_least_loaded_first_and_ties_take_turns():
    loaded = RoleState(ROLE, role_loads={3: 2, 6: 0, 7: 1})

    assert _next("load_balanced", [3, 6, 7], 2, loaded).chosen == (6, 7)
    # Twelve tickets over six idle users: exactly two each, in rotation order.
    picks = _run("load_balanced", [1, 2, 3, 4, 5, 6], 1, 12)
    assert picks == [[user] for user in [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]]


def test_a_decision_record_stays_small_for_a_role_of_a_thousand_users():
    users = list(range(1, 1001))
    state = RoleState(ROLE, availability={user: Availability("unavailable") for user in users[:900]})

    decision = _next("load_balanced", users, 3, state)
    record = decision.record(trigger="new_ticket")

    assert decision.chosen == (901, 902, 903)
    assert len(record["skipped"]) == 50
    assert record["skipped_counts"] == {"unavailable": 900}
    assert record["candidates"] == {"digest": decision.candidates_digest, "count": 1000}
    assert len(str(record)) < 4000
