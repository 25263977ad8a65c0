"""Who gets the work: the one place that decides which users a step goes to.

Every path asks `decide`: a new ticket, the next step, a reassignment, an
escalation, a retry, and the dry run (`simulate`, behind next_assignees). A
decision is a pure function of the candidates TTS listed for the role and the
role's state: where its rotation stands, its users' open loads and their
availability. task.services reads that state (`read_role_state`, one query)
and writes a decision only if no other decision in the role came in between
(the role's `version`), so decisions in one role are serialized without
holding a lock while TTS is asked.
"""

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from task.models import AssigneeLoad, RoundRobinState, UserAvailability
from workflow.models import Steps

Strategy = Steps.AssignmentStrategy
AvailabilityStatus = UserAvailability.Status

# Skip reasons, as decision records and the API write them.
UNAVAILABLE = "unavailable"
AWAY = "away"
AT_CAPACITY = "at_capacity"
ALREADY_ASSIGNED = "already_assigned"

# A decision record lists at most this many skipped users and loads, whatever the role's size.
RECORD_LIMIT = 50


@dataclass(frozen=True)
class Availability:
    status: str
    until: datetime | None = None
    max_open: int | None = None

    def status_at(self, now: datetime) -> str:
        """The status in force at `now`: away or unavailable ends when `until` has passed."""
        if self.until is not None and self.until <= now:
            return AvailabilityStatus.AVAILABLE
        return self.status


@dataclass(frozen=True)
class RoleState:
    """What a decision in one role depends on, besides the candidates."""

    role: str
    cursor: int = 0
    # The role's state row version; None when the role has had no decision yet.
    version: int | None = None
    availability: dict[int, Availability] = field(default_factory=dict)
    role_loads: dict[int, int] = field(default_factory=dict)
    total_loads: dict[int, int] = field(default_factory=dict)
    # Whether the ticket number asked about is stored already (read_role_state's probe).
    ticket_stored: bool = False

    def without(self, assignments) -> "RoleState":
        """The state once these assignments no longer count (those that count as open)."""
        role_loads = dict(self.role_loads)
        total_loads = dict(self.total_loads)
        for row in assignments:
            if not row.is_open:
                continue
            if row.user_id in total_loads:
                total_loads[row.user_id] = max(total_loads[row.user_id] - 1, 0)
            if row.role == self.role and row.user_id in role_loads:
                role_loads[row.user_id] = max(role_loads[row.user_id] - 1, 0)
        return replace(self, role_loads=role_loads, total_loads=total_loads)

    def after(self, decision: "Decision") -> "RoleState":
        """The state as it will be once `decision` is stored (for dry runs)."""
        role_loads = dict(self.role_loads)
        total_loads = dict(self.total_loads)
        for user_id in decision.chosen:
            role_loads[user_id] = role_loads.get(user_id, 0) + 1
            total_loads[user_id] = total_loads.get(user_id, 0) + 1
        return replace(self, cursor=decision.next_cursor, role_loads=role_loads, total_loads=total_loads)


@dataclass(frozen=True)
class Decision:
    """Who a step goes to, and why: what every path stores as its record."""

    strategy: str
    role: str
    candidates: tuple[int, ...]
    chosen: tuple[int, ...]
    skipped: tuple[tuple[int, str], ...]
    position: int
    next_cursor: int
    loads: dict[int, int]
    fell_back_to_away: bool
    state_version: int | None

    @classmethod
    def given(
        cls, *, strategy: str, role: str, candidates: tuple[int, ...], chosen: tuple[int, ...]
    ) -> "Decision":
        """A choice the engine did not make (by hand, or bulk data): no rotation, loads or skips to record."""
        return cls(
            strategy=strategy,
            role=role,
            candidates=candidates,
            chosen=chosen,
            skipped=(),
            position=0,
            next_cursor=0,
            loads={},
            fell_back_to_away=False,
            state_version=None,
        )

    @property
    def waiting(self) -> bool:
        """Nobody was eligible: the work waits for someone to become available."""
        return not self.chosen

    @property
    def candidates_digest(self) -> str:
        return candidates_digest(self.role, self.candidates)

    def record(self, *, trigger: str) -> dict:
        """The decision as stored in the task's history: compact whatever the role's size."""
        counts: dict[str, int] = {}
        for _, reason in self.skipped:
            counts[reason] = counts.get(reason, 0) + 1
        return {
            "trigger": trigger,
            "strategy": self.strategy,
            "role": self.role,
            "candidates": {"digest": self.candidates_digest, "count": len(self.candidates)},
            "position": self.position,
            "chosen": list(self.chosen),
            "skipped": [[user_id, reason] for user_id, reason in self.skipped[:RECORD_LIMIT]],
            "skipped_counts": counts,
            "loads": {str(user_id): load for user_id, load in list(self.loads.items())[:RECORD_LIMIT]},
            "fell_back_to_away": self.fell_back_to_away,
        }

    def waiting_reason(self) -> str:
        """Why nobody was chosen, for the ticket or the task's history."""
        counts: dict[str, int] = {}
        for _, reason in self.skipped:
            counts[reason] = counts.get(reason, 0) + 1
        summary = ", ".join(f"{count} {reason}" for reason, count in sorted(counts.items()))
        return f"Nobody eligible in role {self.role!r} ({len(self.candidates)} listed: {summary})"


def candidates_digest(role: str, candidates: tuple[int, ...] | list[int]) -> str:
    return hashlib.sha1(  # noqa: S324  (a name for a list, not a secret)
        json.dumps([role, list(candidates)]).encode()
    ).hexdigest()


def decide(
    *,
    strategy: str,
    candidates: list[int] | tuple[int, ...],
    take: int,
    state: RoleState,
    now: datetime,
    exclude: frozenset[int] = frozenset(),
) -> Decision:
    """Choose up to `take` of `candidates` (TTS's order is the rotation's order).

    Round robin takes the next eligible users from where the role's rotation
    stands; load balanced takes the eligible users with the fewest open
    assignments in the role, ties in rotation order. Unavailable users, users
    at capacity and users in `exclude` (already on the step) are skipped and
    do not consume a turn; away users are chosen only when no available user
    is eligible.
    """
    candidates = tuple(candidates)
    count = len(candidates)
    start = state.cursor % count if count else 0
    available: list[tuple[int, int]] = []  # (rotation position, user id)
    away: list[tuple[int, int]] = []
    ineligible: list[tuple[int, int, str]] = []  # (position, user id, reason)
    for position in range(count):
        user_id = candidates[(start + position) % count]
        reason = _skip_reason(user_id, state=state, now=now, exclude=exclude)
        if reason is not None:
            ineligible.append((position, user_id, reason))
        elif _status(user_id, state, now) == AvailabilityStatus.AWAY:
            away.append((position, user_id))
        else:
            available.append((position, user_id))

    pool = available or away
    if strategy == Strategy.LOAD_BALANCED:
        pool = sorted(pool, key=lambda entry: (state.role_loads.get(entry[1], 0), entry[0]))
    picked = pool[: max(take, 0)]
    chosen = tuple(user_id for _, user_id in picked)

    passed_over = [(position, user_id, reason) for position, user_id, reason in ineligible]
    if available:
        passed_over += [(position, user_id, AWAY) for position, user_id in away]
    if picked and strategy == Strategy.ROUND_ROBIN:
        # The rotation never looked past the last user it picked.
        last = picked[-1][0]
        passed_over = [entry for entry in passed_over if entry[0] < last]
    passed_over.sort()

    loads = {user_id: state.role_loads.get(user_id, 0) for user_id in chosen}
    if strategy == Strategy.LOAD_BALANCED:
        # The loads it compared: the chosen, and the next best that were not.
        for _, user_id in pool[len(picked) : len(picked) + 5]:
            loads[user_id] = state.role_loads.get(user_id, 0)
    next_cursor = (start + picked[-1][0] + 1) % count if picked else state.cursor
    return Decision(
        strategy=strategy,
        role=state.role,
        candidates=candidates,
        chosen=chosen,
        skipped=tuple((user_id, reason) for _, user_id, reason in passed_over),
        position=start,
        next_cursor=next_cursor,
        loads=loads,
        fell_back_to_away=bool(picked) and not available,
        state_version=state.version,
    )


def simulate(
    *, strategy: str, candidates: list[int], take: int, state: RoleState, now: datetime, count: int
) -> list[Decision]:
    """The next `count` decisions as things stand, each taking the ones before it into account."""
    decisions = []
    for _ in range(count):
        decision = decide(strategy=strategy, candidates=candidates, take=take, state=state, now=now)
        decisions.append(decision)
        state = state.after(decision)
    return decisions


def _status(user_id: int, state: RoleState, now: datetime) -> str:
    availability = state.availability.get(user_id)
    return availability.status_at(now) if availability else AvailabilityStatus.AVAILABLE


def _skip_reason(user_id: int, *, state: RoleState, now: datetime, exclude: frozenset[int]) -> str | None:
    if _status(user_id, state, now) == AvailabilityStatus.UNAVAILABLE:
        return UNAVAILABLE
    if user_id in exclude:
        return ALREADY_ASSIGNED
    availability = state.availability.get(user_id)
    if (
        availability is not None
        and availability.max_open is not None
        and state.total_loads.get(user_id, 0) >= availability.max_open
    ):
        return AT_CAPACITY
    return None


def read_role_state(
    *,
    role: str,
    user_ids: list[int],
    probe_ticket_number: str | None = None,
    lock: bool = False,
    fresh_loads: bool = True,
) -> RoleState:
    """The role's rotation, and the availability and open loads of `user_ids`: one query.

    Users with no availability row are available without limit; users with no
    load row hold no open assignment. `probe_ticket_number`: also say whether
    that ticket is stored already, in the same round trip (a new ticket's
    first delivery decides and writes only if it is not). `lock`: inside a
    transaction, lock the role's rotation until it ends (PostgreSQL), so that
    decisions in the role queue here instead of deciding twice on one state.
    `fresh_loads`: with `lock`, also have the role's loads as the decision
    before this one left them (read again if this one had to wait); round
    robin, which orders by the rotation alone, does without.
    """
    from tickets.models import WorkflowTicket

    if not user_ids:
        return RoleState(role=role)
    ids_sql, ids_params = _in_list(user_ids)
    # One round trip for three tables: rows are tagged by kind and share columns.
    rotation = f"SELECT next_index, version FROM {RoundRobinState._meta.db_table} WHERE role_name = %s"
    locking = lock and connection.vendor == "postgresql"
    sql = (
        f"WITH rotation AS ({rotation}{' FOR UPDATE' if locking else ''}) "
        f"SELECT 'c', next_index, version, CAST(NULL AS VARCHAR(100)), NULL FROM rotation "
        f"UNION ALL SELECT 'a', user_id, max_open_assignments, status, until "
        f"FROM {UserAvailability._meta.db_table} WHERE user_id {ids_sql} "
        f"UNION ALL SELECT 'l', user_id, open_assignments, role, NULL "
        f"FROM {AssigneeLoad._meta.db_table} WHERE user_id {ids_sql} AND open_assignments > 0"
    )
    params = [role, *ids_params, *ids_params]
    if locking and fresh_loads:
        # The rotation as this statement's snapshot saw it. A lock that had to
        # wait returns the row as the decision before this one left it, but the
        # rest of the statement still reads the snapshot taken before that
        # decision committed: then the versions differ and the state is read
        # again, under the lock now held, by a statement that sees it all.
        sql += f" UNION ALL SELECT 's', 0, version, NULL, NULL FROM ({rotation}) AS seen"
        params.append(role)
    if probe_ticket_number is not None:
        sql += (
            f" UNION ALL SELECT 't', id, NULL, NULL, NULL "
            f"FROM {WorkflowTicket._meta.db_table} WHERE ticket_number = %s"
        )
        params.append(probe_ticket_number)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    ticket_stored = False
    cursor_at, version, seen_version = 0, None, None
    availability: dict[int, Availability] = {}
    role_loads: dict[int, int] = {}
    total_loads: dict[int, int] = {}
    for kind, number, value, text, moment in rows:
        if kind == "c":
            cursor_at, version = number, value
        elif kind == "t":
            ticket_stored = True
        elif kind == "s":
            seen_version = value
        elif kind == "a":
            until = parse_datetime(moment) if isinstance(moment, str) else moment
            if until is not None and timezone.is_naive(until):
                until = timezone.make_aware(until, UTC)
            availability[number] = Availability(status=text, until=until, max_open=value)
        else:
            total_loads[number] = total_loads.get(number, 0) + value
            if text == role:
                role_loads[number] = value
    if locking and fresh_loads and version != seen_version:
        return read_role_state(
            role=role, user_ids=user_ids, probe_ticket_number=probe_ticket_number, lock=True
        )
    return RoleState(
        role=role,
        cursor=cursor_at,
        version=version,
        availability=availability,
        role_loads=role_loads,
        total_loads=total_loads,
        ticket_stored=ticket_stored,
    )


def _in_list(values: list[int]) -> tuple[str, list]:
    """`IN (...)` for `values`: one array parameter on PostgreSQL, one per value elsewhere."""
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [list(values)]
    return f"IN ({', '.join(['%s'] * len(values))})", list(values)
