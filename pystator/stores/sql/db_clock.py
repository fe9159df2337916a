"""The fleet's one clock: the database server's.

Whether an event or a timer is due, and whether a worker is alive, is decided against the
database's clock, which every process already shares, instead of each host's own: a host clock
running seconds ahead or behind (no NTP, a paused VM) no longer fires delayed events and retries
early or late, nor takes a live worker for dead.

- On **PostgreSQL** a statement compares with ``statement_timestamp()`` (the start of the
  statement, not of the transaction: ``now()`` is the transaction's start and would be stale in
  a later statement of a long transaction). The worker's hot statements (the claim, the entity
  lock, the due read) carry it as a column, so the transaction learns the time it decided with
  at no extra round trip; less frequent work (timer polls, heartbeats, the relay, the outbox
  sweep) reads it with :func:`read_now` at the start of its transaction.
- On **SQLite** every process runs on one host (one file), whose clock is the database's clock:
  the host's time is bound as a parameter.
- A test (or an embedding application) may pass its own ``clock``: then that clock stands in
  for the database's everywhere (bound as the ``now`` parameter, as on SQLite), so time moves
  when the test says.

:func:`fleet_now` is the SQL expression for "now" in a statement: ``COALESCE(:now,
statement_timestamp())`` on PostgreSQL, ``:now`` on SQLite. :func:`bind_now` gives the value to
bind for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from pystator.fsm_core.clock import Clock, as_utc, utc_now


class fleet_now(FunctionElement[datetime]):
    """``now`` of the fleet in a statement: the bound parameter, else the database's clock."""

    type = sa.DateTime(timezone=True)
    inherit_cache = True
    name = "fleet_now"


@compiles(fleet_now)
def _fleet_now_sqlite(element: fleet_now, compiler: Any, **kw: Any) -> str:
    (param,) = element.clauses
    return str(compiler.process(param, **kw))


@compiles(fleet_now, "postgresql")
def _fleet_now_postgresql(element: fleet_now, compiler: Any, **kw: Any) -> str:
    (param,) = element.clauses
    return f"COALESCE({compiler.process(param, **kw)}, statement_timestamp())"


#: The bound ``now`` parameter the fleet's statements use.
NOW = sa.bindparam("now", type_=sa.DateTime(timezone=True))
#: "now" of the fleet in a statement (see the module docstring).
FLEET_NOW = fleet_now(NOW)

_READ_NOW = sa.select(FLEET_NOW)


def bind_now(conn: Connection, clock: Clock | None) -> datetime | None:
    """The value to bind as ``:now``: the injected clock's time; None on PostgreSQL (the
    server's clock); the host's time on SQLite (its database's clock)."""
    if clock is not None:
        return clock()
    return None if conn.dialect.name == "postgresql" else utc_now()


def read_now(conn: Connection, clock: Clock | None = None) -> datetime:
    """The fleet's time now, for work that then stamps rows with it (one cheap statement on
    PostgreSQL; no statement on SQLite or with an injected clock)."""
    now = bind_now(conn, clock)
    if now is not None:
        return now
    return as_utc(conn.execute(_READ_NOW, {"now": None}).scalar_one())


__all__ = ["FLEET_NOW", "NOW", "bind_now", "fleet_now", "read_now"]
