"""Reading ``transition_history`` for replay: which entities, then their rows in order.

Rows come back as :class:`RecordedStep` tuples (no dataclass per row): replay reads millions.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.stores.sql.schema import transition_history

_H = transition_history.c
#: Entities read per query while streaming their rows.
ENTITY_CHUNK = 500


class RecordedStep(NamedTuple):
    """One recorded transition as replay needs it."""

    entity_id: str
    version: int
    source_state: str | None
    target_state: str
    trigger: str | None
    event_id: int | None
    origin: str
    actions: Sequence[str]
    guard_context: dict[str, Any] | None


def sampled(entity_id: str, rate: float) -> bool:
    """Deterministic sampling of entities: the same ids are chosen on every run."""
    return rate >= 1.0 or (zlib.crc32(entity_id.encode("utf-8")) % 1_000_000) < rate * 1_000_000


def entity_ids(
    conn: Connection,
    machine: str,
    *,
    since: datetime | None = None,
    sample: float = 1.0,
    limit: int | None = None,
) -> list[str]:
    """The machine's entities with history (since ``since``), sampled, the first ``limit``."""
    query = sa.select(_H.entity_id).where(_H.machine == machine).distinct()
    if since is not None:
        query = query.where(_H.created_at >= since)
    chosen: list[str] = []
    for (entity_id,) in conn.execute(query.order_by(_H.entity_id)):
        if sampled(entity_id, sample):
            chosen.append(entity_id)
            if limit is not None and len(chosen) >= limit:
                break
    return chosen


def recorded_steps(
    conn: Connection, machine: str, entities: Sequence[str], *, since: datetime | None = None
) -> Iterator[RecordedStep]:
    """The history rows of ``entities``, entity by entity, oldest version first."""
    columns = (
        _H.entity_id,
        _H.version,
        _H.source_state,
        _H.target_state,
        _H.trigger,
        _H.event_id,
        _H.origin,
        _H.actions,
        _H.guard_context,
    )
    for start in range(0, len(entities), ENTITY_CHUNK):
        chunk = list(entities[start : start + ENTITY_CHUNK])
        query = sa.select(*columns).where(_H.machine == machine, _H.entity_id.in_(chunk))
        if since is not None:
            query = query.where(_H.created_at >= since)
        for row in conn.execute(query.order_by(_H.entity_id, _H.version)):
            yield RecordedStep(
                row[0], int(row[1]), row[2], row[3], row[4], row[5], row[6], row[7] or (), row[8]
            )


__all__ = ["ENTITY_CHUNK", "RecordedStep", "entity_ids", "recorded_steps", "sampled"]
