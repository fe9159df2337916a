"""Moving live entities to a new version of their machine with a state map (``old → new``).

Each entity in a mapped state is moved in the publishing transaction, under its entity lock
(it waits for a worker applying one of its events), with a versioned write: its state becomes the
mapped one, entered anew at the next entity version, and it is recorded on the new machine
version. Each move is a ``transition_history`` row of origin ``migration`` whose payload names
the versions before and after. The timers it had armed are cancelled and the mapped state's own
``after:`` timers are armed, as on any entry. Armed timers that the new version no longer has a
transition for (see :mod:`pystator.registry.compatibility`) are cancelled too, and counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.records import ArmedTimer, EntityRecord, EventOrigin, HistoryEntry
from pystator.registry.compatibility import CompatibilityReport
from pystator.stores.sql import compatibility_queries as queries
from pystator.stores.sql import entity_queries, history_queries, timer_queries
from pystator.stores.sql.locking import wait_for_entity

#: ``transition_history.origin`` of a move made by a state map.
MIGRATION_ORIGIN = EventOrigin.MIGRATION
#: ``transition_history.trigger`` of such a move.
MIGRATION_TRIGGER = "migrate"


@dataclass(frozen=True, slots=True, kw_only=True)
class Moved:
    """One entity moved by a state map."""

    entity_id: str
    source_state: str
    target_state: str
    entity_version: int
    cancelled_timers: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "entity_id": self.entity_id,
            "source_state": self.source_state,
            "target_state": self.target_state,
            "entity_version": self.entity_version,
            "cancelled_timers": self.cancelled_timers,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationResult:
    """What a publish did to the live fleet."""

    moved: tuple[Moved, ...] = ()
    cancelled_timers: int = 0  # orphaned timers cancelled (those of moved entities included)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "moved": [m.to_dict() for m in self.moved],
            "cancelled_timers": self.cancelled_timers,
        }


def _entries(candidate: StateMachine, state: str, version: int) -> dict[str, int]:
    active = set(candidate.active_states(state)) | {state}
    return {s: version for s in sorted(active)}


def _arm(candidate: StateMachine, record: EntityRecord, now: datetime) -> list[ArmedTimer]:
    return [
        ArmedTimer(
            machine=record.machine,
            entity_id=record.entity_id,
            key=spec.key,
            state=spec.state,
            entry=record.version,
            trigger=spec.trigger,
            due_at=now + timedelta(milliseconds=spec.delay_ms),
        )
        for state in record.entries
        if candidate.get_state(state) is not None
        for spec in candidate.timers_for_state(state)
    ]


def move_entity(
    conn: Connection,
    candidate: StateMachine,
    entity_id: str,
    state_map: Mapping[str, str],
    *,
    from_version: int | None,
    to_version: int,
    by: str,
    now: datetime,
) -> Moved | None:
    """Move one entity under its lock (None when it is no longer in a mapped state)."""
    name = candidate.name
    wait_for_entity(conn, name, entity_id)
    stored = entity_queries.load_record(conn, name, entity_id)
    if stored is None or stored.state not in state_map:
        return None
    target = state_map[stored.state]
    version = stored.version + 1
    record = EntityRecord(
        machine=name,
        entity_id=entity_id,
        state=target,
        context=dict(stored.context),
        version=version,
        entries=_entries(candidate, target, version),
        created_at=stored.created_at,
        updated_at=now,
        machine_version=to_version,
    )
    entity_queries.update_record(conn, record, expected_version=stored.version)
    armed = queries.armed_for_entity(conn, name, entity_id)
    cancelled = queries.delete_timers(conn, [t.timer_id for t in armed])
    timer_queries.arm(conn, _arm(candidate, record, now), now)
    history_queries.insert_history(
        conn,
        [
            HistoryEntry(
                machine=name,
                entity_id=entity_id,
                version=version,
                source_state=stored.state,
                target_state=target,
                trigger=MIGRATION_TRIGGER,
                event_id=None,
                origin=MIGRATION_ORIGIN,
                actions=(),
                payload={
                    "from_version": stored.machine_version or from_version,
                    "to_version": to_version,
                    "by": by,
                },
                created_at=now,
                machine_version=to_version,
            )
        ],
    )
    return Moved(
        entity_id=entity_id,
        source_state=stored.state,
        target_state=target,
        entity_version=version,
        cancelled_timers=cancelled,
    )


def migrate(
    conn: Connection,
    candidate: StateMachine,
    report: CompatibilityReport,
    *,
    to_version: int,
    by: str,
    now: datetime,
    cancel_orphans: bool = True,
) -> MigrationResult:
    """Apply ``report.state_map`` to the live entities and cancel the orphaned timers (call it
    in the publishing transaction, the machine's registry row locked)."""
    mapping = dict(report.state_map)
    moved: list[Moved] = []
    for entity_id in queries.entity_ids_in(conn, candidate.name, sorted(mapping)):
        done = move_entity(
            conn,
            candidate,
            entity_id,
            mapping,
            from_version=report.current_version,
            to_version=to_version,
            by=by,
            now=now,
        )
        if done is not None:
            moved.append(done)
    cancelled = sum(m.cancelled_timers for m in moved)
    if cancel_orphans:
        groups = [
            (p.state, p.trigger, p.timer_key)
            for p in report.orphaned_timers
            if p.state is not None and p.trigger is not None and p.timer_key is not None
        ]
        orphans = queries.timers_of_groups(conn, candidate.name, groups)
        cancelled += queries.delete_timers(conn, [timer_id for timer_id, _entity in orphans])
    return MigrationResult(moved=tuple(moved), cancelled_timers=cancelled)


__all__ = [
    "MIGRATION_ORIGIN",
    "MIGRATION_TRIGGER",
    "MigrationResult",
    "Moved",
    "migrate",
    "move_entity",
]
