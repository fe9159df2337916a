"""Starting a process of the fleet: wait for the database, then drain the backlog at once.

**Waiting.** A worker, relay or API process that starts while PostgreSQL is unreachable or
still recovering ("the database system is not yet accepting connections", after a failover or
when the database and the fleet restart together) does not exit: :func:`wait_for_database`
tries again with exponential backoff (0.5 s doubling to 5 s) and logs one line per attempt
(``database_unavailable``, the attempt, the error's first line, the next delay; no traceback).
It gives up after ``PYSTATOR_STARTUP_TIMEOUT_SECONDS`` (300 s; 0: do not wait) with
:class:`~pystator.fsm_core.errors.StoreUnavailableError`: the process exits and its supervisor
decides. Until it connects the process has no heartbeat and serves no request, so a readiness
probe (``pystator health``, the API's port) stays red. The broker is waited for by Celery itself
(``broker_connection_retry_on_startup``); publishing nudges never blocks on it.

**Draining.** A worker that starts with a backlog (the fleet was scaled to zero, a deploy, a
crash) applies it at once through the batched path, without waiting for nudges:
:class:`BacklogDrain` lists the backlog's due entities (those whose oldest pending event has an
id up to the newest when it started; one scan per page of :data:`STARTUP_LIST_PAGE`) and applies
them in chunks of a batch in ``threads`` background threads, each chunk one transaction of the
warm path (:meth:`~pystator.fleet.processor.Processor.apply_listed`: the per-entity locks, the
pending events in id order, one commit), so no batch scans the backlog again. Each worker walks
the list from its own place (a rotation derived from its worker id): workers that start together
work on different entities, skip those another one holds and find those it finished settled.
Then each thread claims what is left (the claim loop of
:meth:`~pystator.fleet.processor.Processor.drain_once`) until a claim comes back empty, or short
while no backlog event is due. Fresh events, submitted after it started, are left to their own
nudges, which the worker already consumes meanwhile (an entity a drain thread holds is skipped
by the nudge and re-checked by the drain after its commit). While it runs, the relay of its
process leaves the backlog to it (:class:`~pystator.fleet.relay.Relay`'s ``leave``): nudging
those entities would only set the worker's consumers racing its drain threads.

``pystator worker`` starts the drain before Celery's worker boots (about a second), right after
its database answers (:func:`pystator.fleet.app.start_before_boot`).

The nudges a backlog leaves in the broker (at most ``PYSTATOR_NUDGE_QUEUE_MAX`` + 16 per
publisher, see :mod:`pystator.fleet.nudge_gate`) announce work the drain does; each would
still cost a message and a read, and a fresh event's nudge would wait behind them all. So when
the queue is at its bound as the worker starts, :func:`clear_stale_nudges` purges it before the
drain begins. Nothing is lost: every nudge purged was published after its events committed, so
the drain, which starts after the purge, sees them. Timers handed to Celery as ETA messages
(``PYSTATOR_SCHEDULER=celery``) are handed over again. (Queue mode's messages carry the events
themselves: a ``--source queue`` worker never purges, and must not share its queue with table
workers.)
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from celery import Celery

from pystator.config.logs import get_logger
from pystator.config.settings import Settings
from pystator.fleet.broker_depth import queue_depth_reader
from pystator.fleet.processor import Processor
from pystator.fleet.relay import EVERYTHING
from pystator.fleet.runtime import Runtime
from pystator.fsm_core.backoff import Backoff
from pystator.fsm_core.errors import StoreError, StoreUnavailableError
from pystator.fsm_core.records import EntityKey
from pystator.stores.sql import event_queries, timer_queries
from pystator.stores.sql.connections import autocommit, ping, transaction
from pystator.stores.sql.db_clock import bind_now
from pystator.stores.sql.engine import is_sqlite, translate_errors

#: Delays between attempts to reach the database at start-up (no jitter: one process).
STARTUP_BACKOFF = Backoff(base_seconds=0.5, max_seconds=5.0, jitter=False)
#: Batches one start-up drain thread claims at most, after its list, before leaving the rest
#: to the nudges.
STARTUP_DRAIN_MAX_BATCHES = 10_000
#: Entities one listing of the backlog returns (the next page is listed once it is walked):
#: about 1 MB of keys in memory at most.
STARTUP_LIST_PAGE = 20_000

log = get_logger("pystator.startup")

T = TypeVar("T")


def wait_for_database(
    settings: Settings,
    *,
    process: str,
    connect: Callable[[str], None] = ping,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Return once ``settings.database_url`` answers; the number of attempts it took.

    Raises :class:`StoreUnavailableError` when it still does not answer after
    ``settings.startup_timeout_seconds``. An embedded SQLite file needs no wait.
    """
    url = settings.database_url
    if is_sqlite(url):
        return 0
    attempts, _ = retry_at_startup(
        settings, process=process, step=lambda: connect(url), sleep=sleep, monotonic=monotonic
    )
    return attempts


def retry_at_startup(
    settings: Settings,
    *,
    process: str,
    step: Callable[[], T],
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> tuple[int, T]:
    """Run ``step`` (something a process needs the database for to start) until it does not
    raise :class:`StoreUnavailableError`, with :data:`STARTUP_BACKOFF` between attempts, for
    up to ``settings.startup_timeout_seconds``; ``(attempts, its result)``."""
    deadline = monotonic() + settings.startup_timeout_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            result = step()
        except StoreUnavailableError as exc:
            delay = STARTUP_BACKOFF.delay(attempt)
            if monotonic() + delay > deadline:
                log.error(
                    "database_unavailable_giving_up",
                    process=process,
                    attempts=attempt,
                    timeout_seconds=settings.startup_timeout_seconds,
                    error=str(exc),
                )
                raise
            log.warning(
                "database_unavailable",
                process=process,
                attempt=attempt,
                retry_in_seconds=round(delay, 2),
                error=str(exc),
            )
            sleep(delay)
            continue
        if attempt > 1:
            log.info("database_available", process=process, attempts=attempt)
        return attempt, result


def clear_stale_nudges(runtime: Runtime, app: Celery) -> int:
    """Purge a nudge queue left at its bound by a backlog (see the module; the backlog drain
    must follow); returns how many messages were purged (0: the queue was below its bound, or
    unreadable)."""
    settings = runtime.settings
    reader = queue_depth_reader(settings.broker_url, settings.queue)
    if settings.nudge_queue_max <= 0 or reader is None:
        return 0
    try:
        depth = reader()
    except Exception as exc:  # kombu/redis/amqp errors: leave the queue as it is
        log.warning("nudge_queue_unreadable", error=f"{type(exc).__name__}: {exc}")
        return 0
    finally:
        reader.close()
    if depth < settings.nudge_queue_max:
        return 0
    with app.connection_for_write() as connection:
        purged = int(connection.default_channel.queue_purge(settings.queue) or 0)
    with translate_errors("hand off timers"), transaction(runtime.engine) as conn:
        rehanded = timer_queries.unhand(conn)  # any ETA message purged is published again
    log.info("stale_nudges_purged", messages=purged, timers_handed_again=rehanded)
    return purged


class BacklogDrain:
    """A starting worker's drain of its backlog (see the module), in ``threads`` threads.

    First it lists the backlog's due entities (one query per page of ``page`` entities,
    oldest head first) and applies them in chunks of a batch
    (:meth:`~pystator.fleet.processor.Processor.apply_listed`: lock, load the pending events
    in id order, apply, commit), the threads taking consecutive chunks. Each worker walks the
    list from its own place (a rotation derived from ``order``, its worker id), so workers that
    start together do not meet on the same entities; an entity another worker holds is skipped
    (its holder applies it), one it finished costs a lock. Then each thread claims what is left
    (the batched claim of :meth:`~pystator.fleet.processor.Processor.drain_once`) until a
    claim comes back empty, or short while no backlog event is due any more. Fresh events,
    submitted after it started, are left to their nudges. :meth:`stop` ends it between two
    transactions; a database error ends it too (the nudges and the relay carry on).
    """

    def __init__(
        self,
        processor: Processor,
        *,
        threads: int,
        order: str = "",
        page: int = STARTUP_LIST_PAGE,
        max_batches: int = STARTUP_DRAIN_MAX_BATCHES,
    ) -> None:
        self.processor = processor
        self.threads = threads
        self.order = order
        self.page = max(page, 1)
        self.max_batches = max_batches
        self.handled = 0
        self._through: int | None = EVERYTHING  # not known before it starts
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # the list being walked: chunks of keys, and where the next page starts
        self._chunks: deque[list[EntityKey]] = deque()
        self._after = 0
        self._listed_all = False

    def start(self) -> BacklogDrain:
        """Run it in the background (a daemon thread, ``pystator-startup-drain``)."""
        self._thread = threading.Thread(target=self.run, name="pystator-startup-drain", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask its threads to end after their current transaction (returns at once)."""
        self._stop.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask its threads to end after their current transaction; True once they have."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def leaves_through(self) -> int | None:
        """What the relay of this process leaves to this drain (its ``leave``): every due event
        until the drain knows its backlog, then the events up to its newest; None once it ended
        (or when there was none)."""
        return self._through

    def run(self) -> int:
        """Drain in this thread (and ``threads - 1`` more); the number of events handled."""
        try:
            return self._run()
        finally:
            self._through = None  # the relay takes over again

    def _run(self) -> int:
        if self.threads < 1:
            return 0
        try:
            with translate_errors("startup drain"), autocommit(self.processor.engine) as conn:
                boundary = event_queries.newest_event_id(conn)
        except StoreError as exc:
            log.warning("startup_drain_stopped", error=str(exc))
            return 0
        if boundary is None:
            return 0
        self._through = boundary
        log.info("startup_drain_started", backlog_through=boundary, threads=self.threads)
        started = time.monotonic()
        counts: list[int] = []
        workers = [
            threading.Thread(
                target=self._work,
                args=(boundary, counts),
                name=f"pystator-startup-drain-{n}",
                daemon=True,
            )
            for n in range(1, self.threads)
        ]
        for worker in workers:
            worker.start()
        self._work(boundary, counts)
        for worker in workers:
            worker.join()
        self.handled = total = sum(counts)
        if total:
            log.info(
                "startup_backlog_drained",
                events=total,
                threads=self.threads,
                seconds=round(time.monotonic() - started, 3),
            )
        return total

    def _work(self, boundary: int, counts: list[int]) -> None:
        processor = self.processor
        count = 0
        try:
            while not self._stop.is_set():
                chunk = self._next_chunk(boundary)
                if chunk is None:
                    break
                count += len(processor.apply_listed(chunk).results)
            full = processor.options.batch_entities
            for _ in range(self.max_batches):
                if self._stop.is_set():
                    break
                batch = processor.drain_once()
                count += len(batch.results)
                # Empty: every due entity is held by another thread (which finishes it) or
                # nothing is due. Another claim would scan the whole backlog again for nothing.
                if batch.entities == 0:
                    break
                if batch.entities < full and not _backlog_left(processor, boundary):
                    break
        except StoreError as exc:
            log.warning("startup_drain_stopped", error=str(exc))
        with self._lock:
            counts.append(count)

    def _next_chunk(self, boundary: int) -> list[EntityKey] | None:
        """The next chunk of the list (listing the next page when this one is walked)."""
        with self._lock:
            if not self._chunks and not self._listed_all:
                self._list_page(boundary)
            return self._chunks.popleft() if self._chunks else None

    def _list_page(self, boundary: int) -> None:
        processor = self.processor
        with translate_errors("startup drain"), autocommit(processor.engine) as conn:
            rows = event_queries.backlog_entities(
                conn,
                bind_now(conn, processor.clock),
                through=boundary,
                after=self._after,
                limit=self.page,
            )
        if len(rows) < self.page:
            self._listed_all = True
        if not rows:
            return
        self._after = rows[-1][1]
        keys = rotated([key for key, _head in rows], self.order)
        size = max(processor.options.batch_entities, 1)
        self._chunks.extend(keys[n : n + size] for n in range(0, len(keys), size))


def rotated(keys: list[EntityKey], order: str) -> list[EntityKey]:
    """``keys`` from a place of their own for ``order`` (a worker id), then around."""
    if not keys or not order:
        return keys
    start = zlib.crc32(order.encode("utf-8")) % len(keys)
    return keys[start:] + keys[:start]


def _backlog_left(processor: Processor, boundary: int) -> bool:
    """True while a due pending event of the backlog (id up to ``boundary``) remains."""
    with translate_errors("startup drain"), autocommit(processor.engine) as conn:
        oldest = event_queries.oldest_due_event(conn, bind_now(conn, processor.clock))
    return oldest is not None and oldest <= boundary


__all__ = [
    "STARTUP_BACKOFF",
    "STARTUP_LIST_PAGE",
    "BacklogDrain",
    "clear_stale_nudges",
    "retry_at_startup",
    "rotated",
    "wait_for_database",
]
