"""Retention: rows past their window are pruned in small batches, by one process at a time.

:func:`prune` is the one implementation; ``pystator prune`` calls it once, and every worker's
:class:`Pruner` duty calls it every ``PYSTATOR_PRUNE_INTERVAL_SECONDS`` (a PostgreSQL advisory
lock lets one process of the fleet prune at a time; the others skip their turn).

A pass visits each target of :mod:`pystator.stores.sql.retention_queries` and deletes
``PYSTATOR_PRUNE_BATCH_ROWS`` rows per transaction, pausing ``PYSTATOR_PRUNE_PAUSE_SECONDS``
between batches (and at least :data:`PAUSE_FACTOR` times what the batch took, so a loaded
database slows the pruner, not the work), so it never holds locks for long or starves the workers.
Each batch deletes the oldest rows of its target and the next one starts where it ended, so the
index walk does not wade through the entries of rows already deleted (they stay until vacuum). With
``PYSTATOR_PRUNE_ARCHIVE_DIR`` set, every deleted row is first appended as one JSON line to
``<dir>/<table>-<YYYY-MM-DD>.jsonl`` (written and fsynced before the delete commits: a crash in
between can archive a row twice, never lose one).

When ``transition_history`` is partitioned by day (``pystator db partition-history``, PostgreSQL
only), a pass first creates the daily partitions of today and the next
:attr:`RetentionPolicy.partition_days_ahead` days, then drops every daily partition entirely older
than the history window (one catalogue change instead of a delete per row) before the row deletes
take the rest (the legacy partition, the DEFAULT one, the day the window cuts through). With an
archive directory the rows are deleted (and archived) first and only the emptied days are dropped.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pystator.config.logs import get_logger
from pystator.config.settings import Settings
from pystator.fleet.composition import settings_engine
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import StoreError
from pystator.stores.sql import locking, partition_queries, retention_queries
from pystator.stores.sql.connections import dispose, transaction
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.retention_queries import TARGETS, Target

#: The name of the fleet-wide lock one pruning process holds.
PRUNE_LOCK = "retention"
#: A pause after a batch lasts at least this many times the batch (the pruner then holds the
#: database at most 1 / (1 + PAUSE_FACTOR) of the time, whatever the load).
PAUSE_FACTOR = 3.0
#: Seconds between two ticks of the pruner duty while it waits for its next pass.
TICK_SECONDS = 1.0
#: Daily history partitions a pass keeps created ahead of today (partitioned history only).
DEFAULT_PARTITION_DAYS_AHEAD = 7
#: A partition change (create, drop) gives up after waiting this long for its lock, rather than
#: queueing the fleet's history writers behind it; the next pass tries again.
PARTITION_LOCK_TIMEOUT_SECONDS = 5.0

log = get_logger("pystator.retention")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """How long each kind of row is kept, and how a pass deletes."""

    windows: Mapping[str, float]  # policy name -> days; 0 keeps forever
    batch_rows: int = 1000
    pause_seconds: float = 0.05
    pause_factor: float = PAUSE_FACTOR  # pause at least this many times the batch's duration
    archive_dir: Path | None = None
    partition_days_ahead: int = DEFAULT_PARTITION_DAYS_AHEAD

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """The policy the ``PYSTATOR_RETENTION_*`` and ``PYSTATOR_PRUNE_*`` settings say."""
        windows = {
            name: float(getattr(settings, f"retention_{name}_days"))
            for name in retention_queries.POLICIES
        }
        archive = Path(settings.prune_archive_dir) if settings.prune_archive_dir else None
        return cls(
            windows=windows,
            batch_rows=settings.prune_batch_rows,
            pause_seconds=settings.prune_pause_seconds,
            archive_dir=archive,
        )

    def cutoff(self, policy: str, now: datetime) -> datetime | None:
        """Rows of ``policy`` older than this go; None when they are kept forever."""
        days = self.windows.get(policy, 0.0)
        return now - timedelta(days=days) if days > 0 else None

    def cutoff_of(self, target: Target, now: datetime) -> datetime | None:
        """Rows of ``target`` older than this go (its policy's window, never less than the
        target's own minimum age); None when they are kept forever."""
        return target.cutoff(self.cutoff(target.policy, now), now)


@dataclass
class PruneReport:
    """What one pass removed (or, for a dry run, would remove) per target."""

    dry_run: bool = False
    removed: dict[str, int] = field(default_factory=dict)
    kept_forever: list[str] = field(default_factory=list)  # targets whose window is 0
    skipped: bool = False  # another process holds the pruning lock
    finished: bool = True  # False when the time budget or a stop ended the pass early
    seconds: float = 0.0
    # partitioned history only: daily partitions dropped (or, dry run, due) and created
    dropped_partitions: list[str] = field(default_factory=list)
    created_partitions: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows removed (or due) across all targets."""
        return sum(self.removed.values())


def prune(
    engine: Engine,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    max_seconds: float | None = None,
    stop: threading.Event | None = None,
    between_batches: Callable[[], None] = lambda: None,
    clock: Clock = utc_now,
) -> PruneReport:
    """One retention pass over every target (see the module's docstring).

    ``dry_run`` counts what would go and deletes nothing. ``max_seconds`` and ``stop`` end a
    pass early (between batches; the next pass continues). Returns a report with
    ``skipped=True`` and nothing done when another process is pruning."""
    started = time.monotonic()
    moment = now or clock()
    report = PruneReport(dry_run=dry_run)
    with translate_errors("retention"):
        if dry_run:
            with engine.connect() as conn:
                for target in TARGETS:
                    cutoff = policy.cutoff_of(target, moment)
                    if cutoff is None:
                        report.kept_forever.append(target.name)
                        continue
                    report.removed[target.name] = retention_queries.count_due(conn, target, cutoff)
                    if _is_history(target) and partition_queries.is_partitioned(conn):
                        report.dropped_partitions = [
                            p.name for p in partition_queries.droppable(conn, cutoff)
                        ]
            report.seconds = time.monotonic() - started
            return report
        with engine.connect() as lock_conn:
            lock_conn = lock_conn.execution_options(isolation_level="AUTOCOMMIT")
            if not locking.try_duty_lock(lock_conn, PRUNE_LOCK):
                report.skipped = True
                return report
            try:
                deadline = None if max_seconds is None else started + max_seconds
                _Pass(engine, policy, moment, report, deadline, stop, between_batches).run()
            finally:
                locking.release_duty_lock(lock_conn, PRUNE_LOCK)
    report.seconds = time.monotonic() - started
    if report.total or report.dropped_partitions:
        log.info(
            "pruned",
            removed=report.removed,
            dropped_partitions=report.dropped_partitions,
            seconds=round(report.seconds, 3),
        )
    return report


@dataclass
class _Pass:
    engine: Engine
    policy: RetentionPolicy
    now: datetime
    report: PruneReport
    deadline: float | None
    stop: threading.Event | None
    between_batches: Callable[[], None]

    partitioned: bool = False

    def run(self) -> None:
        self._create_partitions()
        for target in TARGETS:
            cutoff = self.policy.cutoff_of(target, self.now)
            if cutoff is None:
                self.report.kept_forever.append(target.name)
                continue
            self.report.removed[target.name] = 0
            by_day = self.partitioned and _is_history(target)
            archiving = self.policy.archive_dir is not None
            if by_day and not archiving and not self._drop_days(target, cutoff, only_empty=False):
                self.report.finished = False
                return
            if not self._drain(target, cutoff):
                self.report.finished = False
                return
            if by_day and archiving and not self._drop_days(target, cutoff, only_empty=True):
                self.report.finished = False
                return

    def _create_partitions(self) -> None:
        """Partitioned history: create the coming days' partitions (a failure, such as a lock
        not granted in time, is logged and the pass goes on: DEFAULT takes the rows meanwhile)."""
        with self.engine.connect() as conn:
            self.partitioned = partition_queries.is_partitioned(conn)
        if not self.partitioned:
            return
        try:
            with transaction(self.engine) as conn:
                partition_queries.set_lock_timeout(conn, PARTITION_LOCK_TIMEOUT_SECONDS)
                self.report.created_partitions = partition_queries.create_days(
                    conn, self.now, self.policy.partition_days_ahead
                )
        except sa.exc.DBAPIError as exc:
            log.warning("partition_create_failed", error=str(exc.orig or exc).strip())

    def _drop_days(self, target: Target, cutoff: datetime, *, only_empty: bool) -> bool:
        """Drop the daily partitions entirely older than ``cutoff``, one per transaction;
        False when the pass must end early. ``only_empty``: only those with no rows left."""
        with self.engine.connect() as conn:
            due = partition_queries.droppable(conn, cutoff)
        for partition in due:
            if self._must_stop():
                return False
            try:
                with transaction(self.engine) as conn:
                    partition_queries.set_lock_timeout(conn, PARTITION_LOCK_TIMEOUT_SECONDS)
                    rows = partition_queries.count_rows(conn, partition)
                    if only_empty and rows:
                        continue
                    partition_queries.drop_partition(conn, partition)
            except sa.exc.DBAPIError as exc:
                # its rows are deleted row by row instead (the drain that follows)
                log.warning(
                    "partition_drop_failed",
                    partition=partition.name,
                    error=str(exc.orig or exc).strip(),
                )
                continue
            self.report.removed[target.name] += rows
            self.report.dropped_partitions.append(partition.name)
            self.between_batches()
        return True

    def _drain(self, target: Target, cutoff: datetime) -> bool:
        """Delete ``target``'s old rows batch by batch; False when the pass must end early."""
        limit = self.policy.batch_rows
        after: datetime | None = None
        while True:
            if self._must_stop():
                return False
            started = time.monotonic()
            with transaction(self.engine) as conn:
                batch = retention_queries.delete_batch(
                    conn,
                    target,
                    cutoff,
                    limit,
                    after=after,
                    keep_rows=self.policy.archive_dir is not None,
                )
                if batch.rows:
                    self._archive(target, batch.rows)
            self.report.removed[target.name] += batch.count
            self.between_batches()
            if batch.count < limit:
                return True
            after = batch.last_at
            self._pause(time.monotonic() - started)

    def _must_stop(self) -> bool:
        if self.stop is not None and self.stop.is_set():
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _pause(self, batch_seconds: float) -> None:
        """Rest between batches: at least ``pause_seconds``, and ``pause_factor`` times what the
        batch took, so a loaded database slows the pruner down, not the work."""
        pause = max(self.policy.pause_seconds, batch_seconds * self.policy.pause_factor)
        if pause <= 0:
            return
        if self.stop is not None:
            self.stop.wait(pause)
        else:
            time.sleep(pause)  # the pause between batches is the point

    def _archive(self, target: Target, rows: list[dict[str, Any]]) -> None:
        directory = self.policy.archive_dir
        assert directory is not None
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{target.table.name}-{self.now:%Y-%m-%d}.jsonl"
        with path.open("a", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, default=_json_default, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())


def _is_history(target: Target) -> bool:
    return target.table.name == partition_queries.TABLE


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


class Pruner:
    """A worker's retention duty: a pass every ``PYSTATOR_PRUNE_INTERVAL_SECONDS`` (bounded by
    ``PYSTATOR_PRUNE_MAX_SECONDS``), on a small engine of its own unless ``engine`` is given
    (on PostgreSQL it then never takes a connection the work needs)."""

    def __init__(
        self, settings: Settings, *, clock: Clock = utc_now, engine: Engine | None = None
    ) -> None:
        self.interval = settings.prune_interval_seconds
        self.max_seconds = settings.prune_max_seconds
        self.policy = RetentionPolicy.from_settings(settings)
        self.clock = clock
        self._own_engine = engine is None
        # PostgreSQL: two connections of its own (the lock's session and one batch); SQLite:
        # the process's engine, so its batches queue with the work's writers on one lock
        self.engine = engine if engine is not None else settings_engine(settings, 2)
        self.passes = 0

    def run(self, stop: threading.Event, tick: Callable[[], None] = lambda: None) -> None:
        """Prune every ``interval`` until ``stop`` is set; database outages are logged."""
        next_pass = time.monotonic() + self.interval
        try:
            while not stop.is_set():
                tick()
                if time.monotonic() >= next_pass:
                    self.run_pass(stop, tick)
                    next_pass = time.monotonic() + self.interval
                stop.wait(min(TICK_SECONDS, max(next_pass - time.monotonic(), 0.01)))
        finally:
            if self._own_engine:
                dispose(self.engine)

    def run_pass(
        self, stop: threading.Event | None = None, tick: Callable[[], None] = lambda: None
    ) -> PruneReport | None:
        """One pass; None when the database could not be reached (logged)."""
        try:
            report = prune(
                self.engine,
                self.policy,
                max_seconds=self.max_seconds,
                stop=stop,
                between_batches=tick,
                clock=self.clock,
            )
        except StoreError as exc:
            log.warning("prune_store_error", error=str(exc))
            return None
        self.passes += 1
        return report


__all__ = [
    "DEFAULT_PARTITION_DAYS_AHEAD",
    "PARTITION_LOCK_TIMEOUT_SECONDS",
    "PAUSE_FACTOR",
    "PRUNE_LOCK",
    "PruneReport",
    "Pruner",
    "RetentionPolicy",
    "prune",
]
