"""Every query on ``machine_shadows`` and ``shadow_diffs`` (shadow mode).

A machine has at most one active shadow. Workers add their tallies in small transactions of
their own (counts and bounded difference groups); nothing here is on the event's commit path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc
from pystator.stores.sql.schema import machine_shadows, shadow_diffs

_S = machine_shadows.c
_D = shadow_diffs.c

ACTIVE = "active"
STOPPED = "stopped"
PROMOTED = "promoted"
#: Difference groups kept per shadow; later new groups only add to the shadow's mismatch count.
MAX_GROUPS = 200
#: Example events kept per group.
MAX_EXAMPLES = 5

#: (source state, trigger, active target, shadow target, kind); a target is "" when rejected.
GroupKey = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShadowRow:
    """A shadow of a machine."""

    id: int
    machine: str
    definition: Mapping[str, Any]
    checksum: str
    sample_rate: float
    status: str
    matched: int
    mismatched: int
    promoted_version: int | None
    created_by: str
    created_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffGroup:
    """One difference group of a shadow."""

    source_state: str
    trigger: str
    active_target: str
    shadow_target: str
    kind: str
    count: int
    examples: list[dict[str, Any]]
    first_seen: datetime
    last_seen: datetime


@dataclass(slots=True)
class Tally:
    """What a worker saw of one shadow since its last flush."""

    matched: int = 0
    mismatched: int = 0
    groups: dict[GroupKey, tuple[int, list[dict[str, Any]]]] | None = None


def _shadow(row: Any) -> ShadowRow:
    return ShadowRow(
        id=int(row.id),
        machine=row.machine,
        definition=row.definition,
        checksum=row.checksum,
        sample_rate=float(row.sample_rate),
        status=row.status,
        matched=int(row.matched),
        mismatched=int(row.mismatched),
        promoted_version=row.promoted_version,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        ended_at=as_utc(row.ended_at) if row.ended_at else None,
    )


def active_shadows(conn: Connection) -> list[ShadowRow]:
    """Every active shadow (what workers evaluate)."""
    query = sa.select(machine_shadows).where(_S.status == ACTIVE).order_by(_S.id)
    return [_shadow(r) for r in conn.execute(query)]


def latest_shadow(conn: Connection, machine: str) -> ShadowRow | None:
    """The machine's active shadow, else its most recent one."""
    query = (
        sa.select(machine_shadows)
        .where(_S.machine == machine)
        .order_by((_S.status == ACTIVE).desc(), _S.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else _shadow(row)


def lock_active(conn: Connection, machine: str) -> ShadowRow | None:
    """The machine's active shadow, locked for an update (PostgreSQL)."""
    query = sa.select(machine_shadows).where(_S.machine == machine, _S.status == ACTIVE)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _shadow(row)


def insert_shadow(
    conn: Connection,
    *,
    machine: str,
    definition: Mapping[str, Any],
    checksum: str,
    sample_rate: float,
    by: str,
    now: datetime,
) -> int:
    """Store a new active shadow; returns its id."""
    result = conn.execute(
        sa.insert(machine_shadows)
        .values(
            machine=machine,
            definition=dict(definition),
            checksum=checksum,
            sample_rate=sample_rate,
            status=ACTIVE,
            matched=0,
            mismatched=0,
            created_by=by,
            created_at=now,
        )
        .returning(_S.id)
    )
    return int(result.scalar_one())


def end_shadow(
    conn: Connection,
    shadow_id: int,
    status: str,
    now: datetime,
    *,
    promoted_version: int | None = None,
) -> None:
    """Stop (or mark promoted) a shadow."""
    conn.execute(
        sa.update(machine_shadows)
        .where(_S.id == shadow_id)
        .values(status=status, ended_at=now, promoted_version=promoted_version)
    )


def diff_groups(conn: Connection, shadow_id: int) -> list[DiffGroup]:
    """A shadow's difference groups, the largest first."""
    query = (
        sa.select(shadow_diffs).where(_D.shadow_id == shadow_id).order_by(_D.count.desc(), _D.id)
    )
    return [
        DiffGroup(
            source_state=r["source_state"],
            trigger=r["trigger"],
            active_target=r["active_target"],
            shadow_target=r["shadow_target"],
            kind=r["kind"],
            count=int(r["count"]),
            examples=list(r["examples"] or ()),
            first_seen=as_utc(r["first_seen"]),
            last_seen=as_utc(r["last_seen"]),
        )
        for r in conn.execute(query).mappings()
    ]


def add_tallies(conn: Connection, tallies: Mapping[int, Tally], now: datetime) -> None:
    """Add workers' tallies: counts on the shadow rows, then the groups (bounded), in id and
    key order (two workers flushing at once never wait on each other in a cycle)."""
    for shadow_id in sorted(tallies):
        tally = tallies[shadow_id]
        conn.execute(
            sa.update(machine_shadows)
            .where(_S.id == shadow_id, _S.status == ACTIVE)
            .values(matched=_S.matched + tally.matched, mismatched=_S.mismatched + tally.mismatched)
        )
        if tally.groups:
            _add_groups(conn, shadow_id, tally.groups, now)


def _add_groups(
    conn: Connection,
    shadow_id: int,
    groups: Mapping[GroupKey, tuple[int, list[dict[str, Any]]]],
    now: datetime,
) -> None:
    existing = {
        (r.source_state, r.trigger, r.active_target, r.shadow_target, r.kind): (
            int(r.id),
            list(r.examples or ()),
        )
        for r in conn.execute(
            sa.select(
                _D.id,
                _D.source_state,
                _D.trigger,
                _D.active_target,
                _D.shadow_target,
                _D.kind,
                _D.examples,
            ).where(_D.shadow_id == shadow_id)
        )
    }
    room = MAX_GROUPS - len(existing)
    for key in sorted(groups):
        count, examples = groups[key]
        found = existing.get(key)
        if found is not None:
            row_id, kept = found
            values: dict[str, Any] = {"count": _D.count + count, "last_seen": now}
            if len(kept) < MAX_EXAMPLES:
                values["examples"] = (kept + examples)[:MAX_EXAMPLES]
            conn.execute(sa.update(shadow_diffs).where(_D.id == row_id).values(**values))
        elif room > 0:
            room -= 1
            state, trigger, active, shadow, kind = key
            conn.execute(
                sa.insert(shadow_diffs).values(
                    shadow_id=shadow_id,
                    source_state=state,
                    trigger=trigger,
                    active_target=active,
                    shadow_target=shadow,
                    kind=kind,
                    count=count,
                    examples=examples[:MAX_EXAMPLES],
                    first_seen=now,
                    last_seen=now,
                )
            )


def prune_ended(conn: Connection, before: datetime) -> int:
    """Delete shadows (and their groups) that ended before ``before``; returns how many."""
    ended = sa.select(_S.id).where(_S.status != ACTIVE, _S.ended_at < before)
    ids = [int(i) for (i,) in conn.execute(ended)]
    if not ids:
        return 0
    conn.execute(sa.delete(shadow_diffs).where(_D.shadow_id.in_(ids)))
    conn.execute(sa.delete(machine_shadows).where(_S.id.in_(ids)))
    return len(ids)


def shadow_ids(conn: Connection, ids: Sequence[int]) -> list[int]:
    """Which of ``ids`` are still active."""
    if not ids:
        return []
    query = sa.select(_S.id).where(_S.id.in_(list(ids)), _S.status == ACTIVE)
    return [int(i) for (i,) in conn.execute(query)]


__all__ = [
    "ACTIVE",
    "MAX_EXAMPLES",
    "MAX_GROUPS",
    "PROMOTED",
    "STOPPED",
    "DiffGroup",
    "GroupKey",
    "ShadowRow",
    "Tally",
    "active_shadows",
    "add_tallies",
    "diff_groups",
    "end_shadow",
    "insert_shadow",
    "latest_shadow",
    "lock_active",
    "prune_ended",
    "shadow_ids",
]
