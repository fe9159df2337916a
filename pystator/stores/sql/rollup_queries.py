"""``event_rollups``: events per minute, machine and outcome, added up by the workers.

Workers write what they counted with each heartbeat (:func:`add`); charts and per-minute stats
read windows of it (:func:`per_minute`, :func:`totals`). The table grows by at most one row per
minute, machine and outcome, whatever the event rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc
from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.schema import event_rollups

_R = event_rollups.c

#: ``(minute, machine, outcome)``: the key of one rollup row (``minute`` truncated, UTC).
RollupKey = tuple[datetime, str, str]


def add(conn: Connection, counts: Mapping[RollupKey, int]) -> None:
    """Add ``counts`` to the stored rows (created when missing).

    Rows are written in key order, so two workers adding to the same minutes lock the rows in
    the same order and never deadlock."""
    rows = [
        {"minute": minute, "machine": machine, "outcome": outcome, "count": count}
        for (minute, machine, outcome), count in sorted(counts.items())
        if count
    ]
    if not rows:
        return
    insert = postgresql.insert if is_postgres(conn) else sqlite.insert
    statement = insert(event_rollups)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[_R.minute, _R.machine, _R.outcome],
            set_={"count": _R.count + statement.excluded["count"]},
        ),
        rows,
    )


def per_minute(
    conn: Connection, since: datetime, *, machine: str | None = None
) -> list[tuple[datetime, str, int]]:
    """``(minute, outcome, count)`` from ``since`` on (all machines added up unless one is
    named), oldest first."""
    query = (
        sa.select(_R.minute, _R.outcome, sa.func.sum(_R.count))
        .where(_R.minute >= since)
        .group_by(_R.minute, _R.outcome)
        .order_by(_R.minute)
    )
    if machine is not None:
        query = query.where(_R.machine == machine)
    return [(as_utc(m), str(o), int(n)) for m, o, n in conn.execute(query).all()]


def totals(conn: Connection, since: datetime) -> dict[tuple[str, str], int]:
    """``(machine, outcome) -> count`` added up from ``since`` on."""
    query = (
        sa.select(_R.machine, _R.outcome, sa.func.sum(_R.count))
        .where(_R.minute >= since)
        .group_by(_R.machine, _R.outcome)
    )
    return {(str(m), str(o)): int(n) for m, o, n in conn.execute(query).all()}


__all__ = ["RollupKey", "add", "per_minute", "totals"]
