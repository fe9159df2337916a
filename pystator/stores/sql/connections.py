"""Connections and transactions of the fleet, for both dialects.

``fleet_engine`` builds the engine workers and producers use. On SQLite every transaction starts
with ``BEGIN IMMEDIATE``: it takes the database's single write lock up front, so two threads or
processes never interleave a claim and a write (that lock is SQLite's stand-in for PostgreSQL's
per-entity advisory locks, see :mod:`pystator.stores.sql.locking`). The price is that SQLite
processes one batch at a time across all workers; use PostgreSQL to scale out.

``autocommit`` and ``driver_autocommit`` serve single-statement work (a producer's insert) from a
companion engine whose connections are permanently in autocommit mode.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from pystator.stores.sql.engine import (
    PG_CONNECT_TIMEOUT_SECONDS,
    create_engine_from_url,
    is_sqlite,
    translate_errors,
)

#: Connections per process (threads share them) when the caller does not size the pool.
DEFAULT_POOL_SIZE = 10
#: Connections of the autocommit companion engine (single-statement submits).
AUTOCOMMIT_POOL_SIZE = 2
#: Seconds a thread waits for a pooled connection before StoreUnavailableError.
POOL_TIMEOUT_SECONDS = 10.0
#: ``psycopg.pq.TransactionStatus.IDLE`` (no transaction open, no command in progress).
_IDLE = 0


def _autocommit_driver(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN itself


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTimeouts:
    """PostgreSQL session limits: no statement, and no transaction left idle, runs forever."""

    statement_seconds: float = 30.0
    idle_in_transaction_seconds: float = 60.0

    def options(self) -> str:
        """The libpq ``options`` string that sets them for every connection."""
        return (
            f"-c statement_timeout={int(self.statement_seconds * 1000)} "
            f"-c idle_in_transaction_session_timeout={int(self.idle_in_transaction_seconds * 1000)}"
        )


def fleet_engine(
    url: str, *, pool_size: int = DEFAULT_POOL_SIZE, timeouts: ServerTimeouts | None = None
) -> Engine:
    """An engine for worker and producer transactions on ``url``.

    PostgreSQL: a fixed pool of ``pool_size`` connections (no overflow: the connection budget
    is what the README's formula says), waited for at most :data:`POOL_TIMEOUT_SECONDS`, with
    statement and idle-in-transaction timeouts set on the server side.
    """
    if is_sqlite(url):
        engine = create_engine_from_url(url)
        event.listen(engine, "connect", _autocommit_driver)
        event.listen(engine, "begin", _begin_immediate)
        _writer_locks[engine] = threading.Lock()
        return engine
    # No pre-ping: it costs a round trip per transaction. A connection found dead raises
    # StoreUnavailableError once (the pool is then refreshed); workers retry, producers see it.
    engine = create_engine_from_url(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_pre_ping=False,
        connect_args=_connect_args(timeouts or ServerTimeouts()),
    )
    _timeouts[engine] = timeouts or ServerTimeouts()
    return engine


def _connect_args(timeouts: ServerTimeouts) -> dict[str, Any]:
    return {"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS, "options": timeouts.options()}


_timeouts: WeakKeyDictionary[Engine, ServerTimeouts] = WeakKeyDictionary()


_writer_locks: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()``, with SQLite writers of this process queued on a lock.

    Threads of one process then take turns instead of spinning in SQLite's busy handler (which
    sleeps in growing steps); other processes still wait on the busy timeout.
    """
    lock = _writer_locks.get(engine)
    if lock is None:
        with engine.begin() as conn:
            yield conn
        return
    with lock, engine.begin() as conn:
        yield conn


_autocommit_engines: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()
_companion_lock = threading.Lock()


def _autocommit_engine(engine: Engine) -> Engine:
    with _companion_lock:
        companion = _autocommit_engines.get(engine)
        if companion is None:
            # Its connections never hold a transaction open (every statement commits on its
            # own), so returning one to the pool needs no ROLLBACK.
            companion = create_engine_from_url(
                engine.url,
                isolation_level="AUTOCOMMIT",
                pool_pre_ping=False,
                pool_size=AUTOCOMMIT_POOL_SIZE,
                max_overflow=0,
                pool_timeout=POOL_TIMEOUT_SECONDS,
                pool_reset_on_return=None,
                connect_args=_connect_args(_timeouts.get(engine) or ServerTimeouts()),
            )
            _autocommit_engines[engine] = companion
        return companion


@contextmanager
def autocommit(engine: Engine) -> Iterator[Connection]:
    """A connection whose single statements commit on their own (one round trip each).

    Only for work that is one statement. Served by a companion engine whose connections are
    permanently in autocommit (switching a pooled connection back and forth costs round trips).
    SQLite keeps its writer lock and ``BEGIN IMMEDIATE``.
    """
    if engine in _writer_locks:
        with transaction(engine) as conn:
            yield conn
        return
    with _autocommit_engine(engine).connect() as conn:
        yield conn


def has_driver_path(engine: Engine) -> bool:
    """True when :func:`driver_autocommit` can serve ``engine`` (PostgreSQL through psycopg 3)."""
    return engine not in _writer_locks and engine.dialect.driver == "psycopg"


@contextmanager
def driver_autocommit(engine: Engine) -> Iterator[Any]:
    """The psycopg connection under :func:`autocommit`, for a hot single-statement path.

    SQLAlchemy's per-execute machinery (compile cache lookup, result metadata, connection
    events) costs more Python time than the statement's round trip; the producer's one-event
    insert skips it. The connection is in autocommit mode, so each statement has committed
    when it returns. A connection psycopg reports broken is dropped from the pool.
    """
    fairy = _autocommit_engine(engine).raw_connection()
    conn: Any = fairy.driver_connection
    try:
        if not conn.autocommit:  # set on connect by the companion engine; never run otherwise
            raise RuntimeError("pystator: the producer's connection is not in autocommit mode")
        yield conn
    except BaseException:
        # Broken, or left mid-statement (an interrupt): do not hand it to the next caller.
        if conn.broken or conn.info.transaction_status != _IDLE:
            fairy.invalidate()
        raise
    finally:
        fairy.close()


def ping(url: str) -> None:
    """Open one connection to ``url`` and run ``SELECT 1``; raises
    :class:`~pystator.fsm_core.errors.StoreUnavailableError` when the database does not answer
    (unreachable, refusing, or "not yet accepting connections")."""
    engine = create_engine_from_url(url, poolclass=NullPool)
    try:
        with translate_errors("database"), engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    finally:
        engine.dispose()


def dispose(engine: Engine) -> None:
    """Close the connections of ``engine`` and of its autocommit companion."""
    companion = _autocommit_engines.pop(engine, None)
    if companion is not None:
        companion.dispose()
    engine.dispose()


__all__ = [
    "AUTOCOMMIT_POOL_SIZE",
    "POOL_TIMEOUT_SECONDS",
    "ServerTimeouts",
    "autocommit",
    "dispose",
    "driver_autocommit",
    "fleet_engine",
    "has_driver_path",
    "ping",
    "transaction",
]
