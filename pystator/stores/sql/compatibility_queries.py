"""Every query of a compatibility check and of a state-map migration (changing a live machine).

What a new version of a machine must not strand is read here: entities per state, pending
events per (entity state, trigger), armed timers per (state, trigger, key). A migration moves one
entity at a time under its lock (:func:`~pystator.stores.sql.locking.wait_for_entity`) with a
versioned write, and removes the timers it leaves behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.records import EventStatus
from pystator.stores.sql.schema import entity_states, worker_events, worker_timers

_E = entity_states.c
_W = worker_events.c
_T = worker_timers.c


@dataclass(frozen=True, slots=True)
class PendingGroup:
    """Pending events of one (entity state, trigger); ``state`` None: the entity does not exist
    yet (it starts in the initial state)."""

    state: str | None
    trigger: str
    count: int


@dataclass(frozen=True, slots=True)
class TimerGroup:
    """Armed timers of one (state, trigger, timer key)."""

    state: str
    trigger: str
    key: str
    count: int


@dataclass(frozen=True, slots=True)
class ArmedRow:
    """One armed timer row of an entity (what a migration may cancel)."""

    timer_id: str
    state: str
    trigger: str
    key: str


def entities_per_state(conn: Connection, machine: str) -> dict[str, int]:
    """How many entities of ``machine`` are in each state."""
    query = sa.select(_E.state, sa.func.count()).where(_E.machine == machine).group_by(_E.state)
    return {str(state): int(n) for state, n in conn.execute(query).all()}


def pending_groups(conn: Connection, machine: str) -> list[PendingGroup]:
    """Pending events of ``machine`` counted per (their entity's state, trigger)."""
    joined = worker_events.outerjoin(
        entity_states, sa.and_(_E.machine == _W.machine, _E.entity_id == _W.entity_id)
    )
    query = (
        sa.select(_E.state, _W.trigger, sa.func.count())
        .select_from(joined)
        .where(_W.machine == machine, _W.status == EventStatus.PENDING)
        .group_by(_E.state, _W.trigger)
    )
    return [PendingGroup(s, str(t), int(n)) for s, t, n in conn.execute(query).all()]


def timer_groups(conn: Connection, machine: str) -> list[TimerGroup]:
    """Armed (not dead) timers of ``machine`` counted per (state, trigger, key)."""
    query = (
        sa.select(_T.timer_state, _T.trigger, _T.timer_key, sa.func.count())
        .where(_T.machine == machine, _T.dead_at.is_(None))
        .group_by(_T.timer_state, _T.trigger, _T.timer_key)
    )
    return [TimerGroup(str(s), str(t), str(k), int(n)) for s, t, k, n in conn.execute(query)]


def entity_ids_in(conn: Connection, machine: str, states: Sequence[str]) -> list[str]:
    """Ids of the entities of ``machine`` in any of ``states``, sorted."""
    if not states:
        return []
    query = (
        sa.select(_E.entity_id)
        .where(_E.machine == machine, _E.state.in_(list(states)))
        .order_by(_E.entity_id)
    )
    return [str(i) for i in conn.execute(query).scalars()]


def armed_for_entity(conn: Connection, machine: str, entity_id: str) -> list[ArmedRow]:
    """The armed timer rows of one entity."""
    query = sa.select(_T.timer_id, _T.timer_state, _T.trigger, _T.timer_key).where(
        _T.machine == machine, _T.entity_id == entity_id
    )
    return [ArmedRow(str(i), str(s), str(t), str(k)) for i, s, t, k in conn.execute(query)]


def timers_of_groups(
    conn: Connection, machine: str, groups: Sequence[tuple[str, str, str]]
) -> list[tuple[str, str]]:
    """``(timer_id, entity_id)`` of the armed timers of ``machine`` in the given (state,
    trigger, key) groups."""
    if not groups:
        return []
    query = sa.select(_T.timer_id, _T.entity_id).where(
        _T.machine == machine,
        sa.tuple_(_T.timer_state, _T.trigger, _T.timer_key).in_(list(groups)),
    )
    return [(str(i), str(e)) for i, e in conn.execute(query)]


def delete_timers(conn: Connection, timer_ids: Sequence[str]) -> int:
    """Delete timer rows by id; returns how many were still there."""
    if not timer_ids:
        return 0
    return int(
        conn.execute(sa.delete(worker_timers).where(_T.timer_id.in_(list(timer_ids)))).rowcount
    )


def stamp_unversioned(conn: Connection, machine: str, version: int) -> int:
    """Record ``version`` as the version of every entity of ``machine`` that has none yet (they
    were written before versions were recorded): what a pinned publish keeps them on."""
    result = conn.execute(
        sa.update(entity_states)
        .where(_E.machine == machine, _E.machine_version.is_(None))
        .values(machine_version=version)
    )
    return int(result.rowcount)


__all__ = [
    "ArmedRow",
    "PendingGroup",
    "TimerGroup",
    "armed_for_entity",
    "delete_timers",
    "entities_per_state",
    "entity_ids_in",
    "pending_groups",
    "stamp_unversioned",
    "timer_groups",
    "timers_of_groups",
]
