"""SQL checks of the fleet invariants of DESIGN.md against the real tables: no event lost, each
applied at most once, per-entity order, the same end state as a sequential replay, every action
run at least once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.support.fleet_processes import FLEET_MACHINE_NAME, FLEET_MACHINES
from tests.support.fleet_workload import PlannedEvent

FINAL_STATUSES = frozenset({"completed", "rejected", "dead"})


# ---------------------------------------------------------------------------- invariant checks


@dataclass
class InvariantReport:
    """What the checks found; ``problems`` is empty when every invariant holds."""

    problems: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def fail(self, message: str, examples: Iterable[object] = ()) -> None:
        shown = list(examples)[:5]
        self.problems.append(f"{message}{': ' + repr(shown) if shown else ''}")

    def __str__(self) -> str:
        return "\n".join([f"stats: {self.stats}", *self.problems])


def _rows(conn: sa.Connection, sql: str, **params: Any) -> list[sa.Row[Any]]:
    return list(conn.execute(sa.text(sql), params))


def check_invariants(
    engine: sa.Engine,
    accepted: Mapping[int, PlannedEvent],
    duplicates: int,
    *,
    duplicate_slack: int = 0,
    machine: str = FLEET_MACHINE_NAME,
    check_actions: bool = True,
) -> InvariantReport:
    """Check the fleet invariants of DESIGN.md on the tables after a run.

    ``accepted`` maps every event id a producer got back to what was submitted (duplicates
    collapse onto the first id); ``duplicates`` is how many submissions re-used a key, and
    ``duplicate_slack`` how many more the store may have counted (submissions retried after an
    error that had in fact been inserted).
    """
    report = InvariantReport()
    with engine.connect() as conn:
        _check_no_loss(conn, report, accepted, (duplicates, duplicates + duplicate_slack), machine)
        _check_once(conn, report, machine)
        _check_order(conn, report, machine)
        _check_replay(conn, report, accepted, machine)
        if check_actions:
            _check_actions(conn, report, machine)
    return report


def _check_no_loss(
    conn: sa.Connection,
    report: InvariantReport,
    accepted: Mapping[int, PlannedEvent],
    duplicates: tuple[int, int],
    machine: str,
) -> None:
    rows = _rows(
        conn,
        "SELECT id, status, duplicate_count FROM worker_events WHERE machine = :m",
        m=machine,
    )
    status = {int(r.id): str(r.status) for r in rows}
    report.stats["statuses"] = dict(sorted(_count(status.values()).items()))
    missing = sorted(set(accepted) - set(status))
    if missing:
        report.fail(f"{len(missing)} accepted events have no row (lost)", missing)
    unfinished = sorted(i for i in accepted if status.get(i) not in FINAL_STATUSES)
    if unfinished:
        report.fail(
            f"{len(unfinished)} accepted events are not completed/rejected/dead",
            [(i, status.get(i)) for i in unfinished],
        )
    extra = sorted(set(status) - set(accepted))
    if extra:
        report.fail(f"{len(extra)} event rows nobody submitted", extra)
    counted = sum(int(r.duplicate_count) for r in rows)
    low, high = duplicates
    report.stats["duplicates_submitted"] = low
    report.stats["duplicates_counted"] = counted
    if not low <= counted <= high:
        report.fail(f"duplicate_count sums to {counted}, expected {low}..{high}")


def _check_once(conn: sa.Connection, report: InvariantReport, machine: str) -> None:
    twice = _rows(
        conn,
        "SELECT event_id, count(*) AS n FROM transition_history WHERE machine = :m "
        "AND event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1",
        m=machine,
    )
    if twice:
        report.fail(f"{len(twice)} events changed state more than once", twice)
    not_completed = _rows(
        conn,
        "SELECT h.event_id, e.status FROM transition_history h JOIN worker_events e "
        "ON e.id = h.event_id WHERE h.machine = :m AND e.status <> 'completed'",
        m=machine,
    )
    if not_completed:
        report.fail(f"{len(not_completed)} history rows for events not completed", not_completed)
    gaps = _rows(
        conn,
        "SELECT s.entity_id, s.version, count(h.id) AS n FROM entity_states s "
        "LEFT JOIN transition_history h ON h.machine = s.machine AND h.entity_id = s.entity_id "
        "WHERE s.machine = :m GROUP BY s.entity_id, s.version HAVING count(h.id) <> s.version",
        m=machine,
    )
    if gaps:
        report.fail(f"{len(gaps)} entities whose version is not their history length", gaps)


def _check_order(conn: sa.Connection, report: InvariantReport, machine: str) -> None:
    rows = _rows(
        conn,
        "SELECT entity_id, version, event_id FROM transition_history WHERE machine = :m "
        "ORDER BY entity_id, version",
        m=machine,
    )
    last: dict[str, int] = {}
    bad = []
    for r in rows:
        if r.event_id is None:
            continue
        previous = last.get(r.entity_id)
        if previous is not None and int(r.event_id) <= previous:
            bad.append((r.entity_id, r.version, previous, int(r.event_id)))
        last[r.entity_id] = int(r.event_id)
    if bad:
        report.fail(f"{len(bad)} history rows out of submission order", bad)


def sequential_replay(
    accepted: Mapping[int, PlannedEvent], machine_path: Path | None = None
) -> dict[str, tuple[str, int]]:
    """Final ``(state, version)`` per entity when the accepted events run one by one, in order.

    A guard that raises (poison) leaves the entity unchanged, as a dead-lettered event does.
    """
    from pystator import StateMachine
    from pystator.fsm_core.errors import GuardEvaluationError
    from tests.support.fleet_app import bind

    machine = StateMachine.from_yaml(machine_path or FLEET_MACHINES / "fleet_cycle.yaml")
    bind(machine, action_sink=None)
    states: dict[str, tuple[str, int]] = {}
    for event_id in sorted(accepted):
        event = accepted[event_id]
        state, version = states.get(event.entity_id, (machine.get_initial_state(), 0))
        try:
            result = machine.process(state, event.trigger, dict(event.context))
        except GuardEvaluationError:  # the worker retries it, then dead-letters the event
            continue
        if result.success and result.target_state is not None:
            states[event.entity_id] = (result.target_state, version + 1)
    return states


def _check_replay(
    conn: sa.Connection,
    report: InvariantReport,
    accepted: Mapping[int, PlannedEvent],
    machine: str,
) -> None:
    expected = sequential_replay(accepted)
    rows = _rows(
        conn, "SELECT entity_id, state, version FROM entity_states WHERE machine = :m", m=machine
    )
    actual = {str(r.entity_id): (str(r.state), int(r.version)) for r in rows}
    wrong = [(e, actual.get(e), want) for e, want in expected.items() if actual.get(e) != want]
    wrong += [(e, got, None) for e, got in actual.items() if e not in expected]
    report.stats["entities"] = len(actual)
    if wrong:
        report.fail(f"{len(wrong)} entities differ from the sequential replay", wrong)


def _check_actions(conn: sa.Connection, report: InvariantReport, machine: str) -> None:
    outbox = _rows(
        conn, "SELECT id, status FROM action_outbox WHERE machine = :m ORDER BY id", m=machine
    )
    log = _rows(conn, "SELECT token, count(*) AS n FROM action_log GROUP BY token")
    ran = {str(r.token): int(r.n) for r in log}
    never = [int(r.id) for r in outbox if str(r.id) not in ran]
    if never:
        report.fail(f"{len(never)} outbox actions never ran", never)
    unknown = sorted(set(ran) - {str(r.id) for r in outbox})
    if unknown:
        report.fail(f"{len(unknown)} action runs carry a token with no outbox row", unknown)
    report.stats["actions"] = len(outbox)
    report.stats["action_runs"] = sum(ran.values())
    report.stats["action_duplicate_runs"] = sum(n - 1 for n in ran.values() if n > 1)
    applied_with_actions = _rows(
        conn,
        "SELECT count(*) AS n FROM transition_history WHERE machine = :m "
        "AND trigger IN ('next', 'reset')",
        m=machine,
    )[0].n
    if int(applied_with_actions) != len(outbox):
        report.fail(
            f"{applied_with_actions} applied next/reset transitions but {len(outbox)} outbox rows"
        )


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for v in values:
        out[v] += 1
    return dict(out)
