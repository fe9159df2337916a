"""A worker process's own account of whether it is alive and moving, written as its heartbeat.

:class:`WorkerStatus` is updated by the work itself: every unit of work (a Celery task, a drain
iteration) runs inside :meth:`WorkerStatus.working`, every background duty ticks
(:meth:`WorkerStatus.tick`) on each iteration, and a duty that dies says so
(:meth:`WorkerStatus.died`). :class:`Heartbeat` writes a snapshot to ``worker_heartbeats`` every
``PYSTATOR_HEARTBEAT_SECONDS``; ``pystator health`` reads it (see :mod:`pystator.services.health`).

A snapshot lists the process's stalls: work in flight longer than ``PYSTATOR_STALL_SECONDS``, a
duty that has not ticked for that long or has died, and action threads stuck for that long.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from pystator.config.logs import get_logger
from pystator.fleet.rollups import EventRollups
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import StoreError
from pystator.stores.sql import heartbeat_queries, locking, rollup_queries
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.db_clock import read_now
from pystator.stores.sql.engine import create_engine_from_url, is_sqlite, translate_errors

log = get_logger("pystator.worker")

#: ``(older_than_seconds) -> ids`` of actions stuck that long (the outbox runner provides it).
HungActions = Callable[[float], list[int]]


class WorkerStatus:
    """Thread-safe liveness state of one worker process."""

    def __init__(
        self, *, kind: str, info: dict[str, Any] | None = None, clock: Clock = utc_now
    ) -> None:
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.kind = kind
        self.worker_id = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.started_at = clock()
        self.info = dict(info or {})
        self._lock = threading.Lock()
        self._tokens = itertools.count()
        self._in_flight: dict[int, float] = {}
        self._progress = time.monotonic()
        self._applied = 0
        self._ticks: dict[str, float] = {}
        self._dead: dict[str, str] = {}

    @contextmanager
    def working(self) -> Iterator[None]:
        """Mark one unit of work in flight; when it ends, that is progress."""
        token = next(self._tokens)
        with self._lock:
            self._in_flight[token] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._in_flight.pop(token, None)
                self._progress = time.monotonic()

    def begin(self, key: object) -> None:
        """Mark a unit of work named ``key`` in flight (for work that starts and ends in two
        callbacks, like a Celery task's pre-run and post-run signals)."""
        with self._lock:
            self._in_flight[hash(key)] = time.monotonic()

    def end(self, key: object) -> None:
        """The unit of work ``key`` ended: that is progress."""
        with self._lock:
            self._in_flight.pop(hash(key), None)
            self._progress = time.monotonic()

    def applied(self, count: int) -> None:
        """Count events handled (for operators)."""
        with self._lock:
            self._applied += count

    def tick(self, duty: str) -> None:
        """A background duty went round its loop once."""
        with self._lock:
            self._ticks[duty] = time.monotonic()

    def died(self, duty: str, error: str) -> None:
        """A background duty's thread ended with an error."""
        with self._lock:
            self._dead[duty] = error

    def snapshot(
        self,
        stall_seconds: float,
        hung: HungActions | None = None,
        *,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """The heartbeat row: in flight, last progress (now when idle), stalls found; ``at``
        is the time to stamp it with (the database's, when the heartbeat writes it)."""
        now_wall = self.clock() if at is None else at
        now = time.monotonic()
        with self._lock:
            in_flight = dict(self._in_flight)
            progress = now if not in_flight else self._progress
            ticks = dict(self._ticks)
            dead = dict(self._dead)
            applied = self._applied
        stalls = [f"duty {name} died: {error}" for name, error in dead.items()]
        oldest = max((now - started for started in in_flight.values()), default=0.0)
        if oldest > stall_seconds:
            stalls.append(f"work in flight for {oldest:.0f} s")
        for name, last in ticks.items():
            if name not in dead and now - last > stall_seconds:
                stalls.append(f"duty {name} has not run for {now - last:.0f} s")
        stuck = hung(stall_seconds) if hung is not None else []
        if stuck:
            stalls.append(f"{len(stuck)} action(s) running for more than {stall_seconds:g} s")
        return {
            "worker_id": self.worker_id,
            "host": self.host,
            "pid": self.pid,
            "kind": self.kind,
            "started_at": self.started_at,
            "beat_at": now_wall,
            "progress_at": now_wall - timedelta(seconds=now - progress),
            "in_flight": len(in_flight),
            "applied": applied,
            "info": {
                **self.info,
                "stalls": stalls,
                "duties": {name: round(now - last, 1) for name, last in ticks.items()},
                "oldest_in_flight_seconds": round(oldest, 1),
            },
        }


class Heartbeat:
    """The duty that writes a process's :class:`WorkerStatus` to ``worker_heartbeats``."""

    name = "heartbeat"

    def __init__(
        self,
        engine: Engine,
        status: WorkerStatus,
        *,
        interval: float,
        stall_seconds: float,
        hung: HungActions | None = None,
        extra: Callable[[], Mapping[str, Any]] | None = None,
        rollups: EventRollups | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.status = status
        self.interval = interval
        self.stall_seconds = stall_seconds
        self.hung = hung
        self.extra = extra
        self.rollups = rollups

    def beat_once(self) -> dict[str, Any]:
        """Write one snapshot (plus ``extra()`` in its ``info``) and the event counts gathered
        since the last beat, in one transaction; returns the snapshot. It is stamped with the
        database's clock (or ``clock``), which :func:`find_dead_workers` compares it with."""
        counts = self.rollups.take() if self.rollups is not None else {}
        try:
            with translate_errors("heartbeat"), transaction(self.engine) as conn:
                at = read_now(conn, self.clock)
                values = self.status.snapshot(self.stall_seconds, self.hung, at=at)
                if self.extra is not None:
                    values["info"].update(self.extra())
                heartbeat_queries.beat(conn, values)
                rollup_queries.add(conn, counts)
        except BaseException:
            if self.rollups is not None:
                self.rollups.restore(counts)
            raise
        return values

    def run(self, stop: threading.Event) -> None:
        """Beat every ``interval`` until ``stop``; then record the orderly stop."""
        while not stop.is_set():
            self.status.tick(self.name)
            try:
                self.beat_once()
            except StoreError as exc:
                log.warning("heartbeat_failed", error=str(exc))
            stop.wait(self.interval)
        self.stopped()

    def stopped(self, now: datetime | None = None) -> None:
        """Mark this worker stopped (at ``now``, default the database's time) and write its
        last counts (best effort)."""
        counts = self.rollups.take() if self.rollups is not None else {}
        try:
            with translate_errors("heartbeat"), transaction(self.engine) as conn:
                at = read_now(conn, self.clock) if now is None else now
                heartbeat_queries.mark_stopped(conn, self.status.worker_id, at)
                rollup_queries.add(conn, counts)
        except StoreError as exc:
            log.warning("heartbeat_stop_not_recorded", error=str(exc))


class LivenessLock:
    """A worker process's session lock on a connection of its own, held for its whole life.

    PostgreSQL releases it the moment the process dies (its connection closes, SIGKILL
    included), so :func:`find_dead_workers` can tell a dead worker from a slow one at once.
    """

    def __init__(self, url: str | URL, worker_id: str) -> None:
        self.worker_id = worker_id
        self._engine = create_engine_from_url(url, poolclass=NullPool)
        self._conn: Connection | None = None
        if not is_sqlite(url):
            try:
                with translate_errors("liveness lock"):
                    self._conn = self._engine.connect()
                    locking.hold_worker_lock(self._conn, worker_id)
                    self._conn.commit()
            except BaseException:
                self.release()  # the caller gets no object to release: close it here
                raise

    def release(self) -> None:
        """Give the lock up (an orderly stop)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()


def find_dead_workers(
    engine: Engine, *, stale_after: timedelta, clock: Clock | None = None
) -> list[str]:
    """Worker processes that died without stopping: their liveness lock is free, or their
    heartbeat is older than ``stale_after`` (a host gone silent) by the database's clock, the
    one that stamped it (or ``clock``). They are recorded as stopped, so each death is reported
    once. Prefork children hold no work of their own and are not judged here."""
    dead: list[str] = []
    with translate_errors("liveness"), transaction(engine) as conn:
        now = read_now(conn, clock)
        for row in heartbeat_queries.heartbeats(conn):
            if row["stopped_at"] is not None or row["kind"] == "child":
                continue
            stale = now - row["beat_at"] > stale_after
            if stale or not locking.worker_alive(conn, row["worker_id"]):
                dead.append(row["worker_id"])
                heartbeat_queries.mark_stopped(conn, row["worker_id"], now)
    for worker_id in dead:
        log.warning("worker_died", worker_id=worker_id)
    return dead


__all__ = ["Heartbeat", "HungActions", "LivenessLock", "WorkerStatus", "find_dead_workers"]
