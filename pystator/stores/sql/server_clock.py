"""The database server's clock, as the fleet's one clock: how far it is from a process's own.

A producer stamps an immediate event with its clock and a worker applies it once its clock
passes that time, so a producer whose host clock runs ahead of a worker's would make the
worker find the event "not yet due" and leave it to the relay. Measuring every process's
offset to the same server clock (:class:`~pystator.clock.AlignedClock`) removes the skew.
"""

from __future__ import annotations

import functools
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pystator.clock import AlignedClock, Clock, as_utc
from pystator.fsm_core.errors import StoreError
from pystator.logging import get_logger
from pystator.stores.sql.connections import autocommit
from pystator.stores.sql.engine import translate_errors

#: An offset this large is logged: the host's clock wants fixing (NTP), even though the fleet
#: keeps working on the server's time.
SKEW_WARNING = timedelta(seconds=1)

_SERVER_NOW = sa.select(sa.func.clock_timestamp())

log = get_logger("pystator.clock")


def has_server_clock(engine: Engine) -> bool:
    """True when the database is a server with a clock of its own (PostgreSQL; a SQLite file
    shares the host's clock)."""
    return engine.dialect.name == "postgresql"


def clock_offset(engine: Engine, local: Clock) -> timedelta | None:
    """How far the server's clock is ahead of ``local`` (negative: behind), from one read taken
    between two local readings (their midpoint); None when the server cannot be reached."""
    try:
        with translate_errors("server clock"), autocommit(engine) as conn:
            before = local()
            server = as_utc(conn.execute(_SERVER_NOW).scalar_one())
            after = local()
    except StoreError as exc:
        log.warning("clock_offset_unknown", error=str(exc))
        return None
    offset = server - (before + (after - before) / 2)
    if abs(offset) >= SKEW_WARNING:
        log.warning("clock_skew", offset_seconds=round(offset.total_seconds(), 3))
    return offset


def fleet_clock(engine: Engine) -> AlignedClock:
    """The fleet's clock for a process on ``engine``: this host's, aligned with the server's
    (PostgreSQL), or the host's own (SQLite)."""
    probe = functools.partial(clock_offset, engine) if has_server_clock(engine) else None
    return AlignedClock(probe)


__all__ = ["SKEW_WARNING", "clock_offset", "fleet_clock", "has_server_clock"]
