"""Every query of discovery: observations, candidates, drafts, and the fleet's history read as
observations.

Rows cross this module as plain values (:class:`ObservationValues`, :class:`CandidateRow`,
:class:`DraftRow`, and ``(entity_id, observed_at, seq, state, trigger, previous_state)`` tuples for
the streams); :mod:`pystator.discovery` turns them into its models. The two streams are ordered
by entity and then by time (observations: ``observed_at`` then arrival id; history: the entity's
version) and fetched in chunks (a server-side cursor on PostgreSQL), so a caller's memory does not
grow with the number of rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc
from pystator.fsm_core.records import EventOrigin
from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.schema import (
    discovery_candidates,
    discovery_drafts,
    discovery_observations,
    transition_history,
)

_O = discovery_observations.c
_C = discovery_candidates.c
_D = discovery_drafts.c
_H = transition_history.c

#: Rows fetched per round trip while streaming observations or history.
STREAM_CHUNK_ROWS = 10_000

#: ``(entity_id, observed_at, seq, state, trigger, previous_state)``, ``seq`` ordering ties.
StreamRow: TypeAlias = tuple[str, datetime, int, str, str | None, str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservationValues:
    """One observation to insert."""

    entity_id: str
    state: str
    observed_at: datetime
    trigger: str | None
    previous_state: str | None
    source: str
    source_event_id: str | None


# --- observations -------------------------------------------------------------------------------


def insert_observations(
    conn: Connection, machine: str, rows: Sequence[ObservationValues], now: datetime
) -> int:
    """Insert ``rows`` in their order (their ids are their arrival order); return how many were
    new. An observation whose ``(source, source_event_id)`` this machine already has is skipped
    (``ON CONFLICT DO NOTHING … RETURNING`` counts the new ones); runs of rows without an id go
    in one plain executemany."""
    dialect = postgresql if is_postgres(conn) else sqlite
    keyed_insert = (
        dialect.insert(discovery_observations)
        .on_conflict_do_nothing(index_elements=["machine", "source", "source_event_id"])
        .returning(_O.id)
    )
    inserted = 0
    for without_id, run in itertools.groupby(rows, key=lambda r: r.source_event_id is None):
        values = [_values(machine, r, now) for r in run]
        if without_id:
            conn.execute(sa.insert(discovery_observations), values)
            inserted += len(values)
        else:
            inserted += len(conn.execute(keyed_insert, values).all())
    return inserted


def _values(machine: str, row: ObservationValues, now: datetime) -> dict[str, Any]:
    return {
        "machine": machine,
        "entity_id": row.entity_id,
        "state": row.state,
        "observed_at": row.observed_at,
        "trigger": row.trigger,
        "previous_state": row.previous_state,
        "source": row.source,
        "source_event_id": row.source_event_id,
        "created_at": now,
    }


def stream_observations(
    conn: Connection, machine: str, *, entity_ids: Sequence[str] | None = None
) -> Iterator[StreamRow]:
    """A machine's observations ordered by entity, ``observed_at`` and arrival."""
    query = sa.select(
        _O.entity_id, _O.observed_at, _O.id, _O.state, _O.trigger, _O.previous_state
    ).where(_O.machine == machine)
    if entity_ids is not None:
        query = query.where(_O.entity_id.in_(list(entity_ids)))
    query = query.order_by(_O.entity_id, _O.observed_at, _O.id)
    yield from _stream(conn, query)


def count_observations(conn: Connection, machine: str) -> int:
    """How many observations ``machine`` has."""
    query = sa.select(sa.func.count()).select_from(discovery_observations)
    return int(conn.execute(query.where(_O.machine == machine)).scalar_one())


def observed_machines(conn: Connection) -> list[str]:
    """Every machine name with observations, sorted."""
    query = sa.select(_O.machine).distinct().order_by(_O.machine)
    return [str(name) for name in conn.execute(query).scalars()]


def observed_entities(conn: Connection, machine: str, *, limit: int) -> list[str]:
    """The first ``limit`` entity ids (sorted) ``machine`` has observations of."""
    query = (
        sa.select(_O.entity_id)
        .where(_O.machine == machine)
        .distinct()
        .order_by(_O.entity_id)
        .limit(limit)
    )
    return [str(e) for e in conn.execute(query).scalars()]


# --- the fleet's transition history as observations -----------------------------------------


def stream_history(
    conn: Connection,
    machine: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    entity_ids: Sequence[str] | None = None,
) -> Iterator[StreamRow]:
    """The applied transitions of ``machine`` committed in ``[since, until)``, as observations:
    ordered by entity and version (the order the fleet applied them; ``seq`` is the version),
    the state entered with its trigger and the state it left (None for an entity's creation).

    A publish's state-map moves (origin ``migration``) are left out: an operator moved the
    entity, the process did not; the row after one names the state it left, so no edge is
    made up across it."""
    query = sa.select(
        _H.entity_id, _H.created_at, _H.version, _H.target_state, _H.trigger, _H.source_state
    ).where(_H.machine == machine, _H.origin != EventOrigin.MIGRATION.value)
    if since is not None:
        query = query.where(_H.created_at >= since)
    if until is not None:
        query = query.where(_H.created_at < until)
    if entity_ids is not None:
        query = query.where(_H.entity_id.in_(list(entity_ids)))
    yield from _stream(conn, query.order_by(_H.entity_id, _H.version))


def _stream(conn: Connection, query: sa.Select[Any]) -> Iterator[StreamRow]:
    result = conn.execution_options(yield_per=STREAM_CHUNK_ROWS).execute(query)
    try:
        for entity_id, at, seq, state, trigger, previous in result:
            yield entity_id, as_utc(at), int(seq), state, trigger, previous
    finally:
        result.close()


# --- candidates -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CandidateRow:
    """One ``discovery_candidates`` row."""

    machine: str
    version: int
    config: dict[str, Any]
    edges: list[Any]
    summary: dict[str, Any]
    draft_id: int | None
    created_by: str
    created_at: datetime


def insert_candidate(conn: Connection, row: CandidateRow) -> int:
    """Insert a candidate as the next version of its machine; return that version.

    One statement numbers and inserts it, so on SQLite it takes the write lock before it reads
    (no lock upgrade to fail). On PostgreSQL two concurrent inserts may compute the same number:
    the primary key refuses the second with an integrity error, and its caller tries again.
    """
    next_version = (
        sa.select(sa.func.coalesce(sa.func.max(_C.version), 0) + 1)
        .where(_C.machine == row.machine)
        .scalar_subquery()
    )
    statement = (
        sa.insert(discovery_candidates)
        .values(
            machine=row.machine,
            version=next_version,
            config=row.config,
            edges=row.edges,
            summary=row.summary,
            draft_id=row.draft_id,
            created_by=row.created_by,
            created_at=row.created_at,
        )
        .returning(_C.version)
    )
    return int(conn.execute(statement).scalar_one())


def get_candidate(
    conn: Connection, machine: str, version: int | None = None
) -> CandidateRow | None:
    """Candidate ``version`` of ``machine`` (None: the newest), or None."""
    query = sa.select(discovery_candidates).where(_C.machine == machine)
    if version is not None:
        query = query.where(_C.version == version)
    row = conn.execute(query.order_by(_C.version.desc()).limit(1)).mappings().first()
    return None if row is None else _candidate(row)


def list_candidates(conn: Connection, machine: str) -> list[CandidateRow]:
    """Every candidate of ``machine``, newest first."""
    query = sa.select(discovery_candidates).where(_C.machine == machine)
    rows = conn.execute(query.order_by(_C.version.desc())).mappings()
    return [_candidate(row) for row in rows]


def _candidate(row: Any) -> CandidateRow:
    return CandidateRow(
        machine=row["machine"],
        version=int(row["version"]),
        config=dict(row["config"]),
        edges=list(row["edges"]),
        summary=dict(row["summary"]),
        draft_id=row["draft_id"],
        created_by=row["created_by"],
        created_at=as_utc(row["created_at"]),
    )


# --- drafts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftRow:
    """One ``discovery_drafts`` row (``id`` is 0 before it is inserted)."""

    id: int
    machine: str
    title: str
    entity_ids: list[str]
    min_edge_count: int
    min_confidence: float
    mode: str
    edge_selection: list[list[str]]
    last_built_version: int | None
    created_at: datetime
    updated_at: datetime


def _draft_values(row: DraftRow) -> dict[str, Any]:
    return {
        "machine": row.machine,
        "title": row.title,
        "entity_ids": list(row.entity_ids),
        "min_edge_count": row.min_edge_count,
        "min_confidence": row.min_confidence,
        "mode": row.mode,
        "edge_selection": [list(pair) for pair in row.edge_selection],
        "last_built_version": row.last_built_version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def insert_draft(conn: Connection, row: DraftRow) -> int:
    """Insert a draft; return its id."""
    statement = sa.insert(discovery_drafts).values(**_draft_values(row)).returning(_D.id)
    return int(conn.execute(statement).scalar_one())


def update_draft(conn: Connection, row: DraftRow) -> bool:
    """Overwrite draft ``row.id`` (its machine and creation time stay); False when it is gone."""
    values = _draft_values(row)
    del values["machine"], values["created_at"]
    result = conn.execute(sa.update(discovery_drafts).where(_D.id == row.id).values(**values))
    return bool(result.rowcount)


def delete_draft(conn: Connection, draft_id: int) -> bool:
    """Delete a draft; False when there was none with that id."""
    result = conn.execute(sa.delete(discovery_drafts).where(_D.id == draft_id))
    return bool(result.rowcount)


def get_draft(conn: Connection, draft_id: int) -> DraftRow | None:
    """Draft ``draft_id``, or None."""
    row = conn.execute(sa.select(discovery_drafts).where(_D.id == draft_id)).mappings().first()
    return None if row is None else _draft(row)


def list_drafts(conn: Connection, machine: str) -> list[DraftRow]:
    """The drafts of ``machine``, oldest first."""
    query = sa.select(discovery_drafts).where(_D.machine == machine).order_by(_D.id)
    return [_draft(row) for row in conn.execute(query).mappings()]


def _draft(row: Any) -> DraftRow:
    return DraftRow(
        id=int(row["id"]),
        machine=row["machine"],
        title=row["title"],
        entity_ids=[str(e) for e in row["entity_ids"]],
        min_edge_count=int(row["min_edge_count"]),
        min_confidence=float(row["min_confidence"]),
        mode=row["mode"],
        edge_selection=[[str(a), str(b)] for a, b in row["edge_selection"]],
        last_built_version=row["last_built_version"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )


__all__ = [
    "STREAM_CHUNK_ROWS",
    "CandidateRow",
    "DraftRow",
    "ObservationValues",
    "StreamRow",
    "count_observations",
    "delete_draft",
    "get_candidate",
    "get_draft",
    "insert_candidate",
    "insert_draft",
    "insert_observations",
    "list_candidates",
    "list_drafts",
    "observed_entities",
    "observed_machines",
    "stream_history",
    "stream_observations",
    "update_draft",
]
