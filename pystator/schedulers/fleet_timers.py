"""The worker fleet's timers: where an armed ``after:``/``timeout:`` timer is kept and what fires it.

Whatever the backend, an armed timer is a ``worker_timers`` row written in the transaction that
entered its state (durable with the state change) and deleted by the one that leaves it. Firing a
timer deletes its row and inserts its event (origin ``timer``, carrying the state entry) in one
transaction, so it fires at most once whoever gets there first, and the event takes its place in
the entity's order when it fires, not when it was armed. The step drops (``stale``) a fired timer
whose state entry has been left meanwhile. The backends (``PYSTATOR_SCHEDULER``) differ only in
what notices the due time:

``db`` (:class:`DbTimerSink`, the default)
    A poller thread in every worker takes due rows every ``timer_poll_seconds``; PostgreSQL's
    ``SKIP LOCKED`` shares them between workers.
``redis`` (:class:`~pystator.schedulers.fleet_redis_timers.RedisTimerSink`)
    After commit the timer also goes into a :class:`~pystator.schedulers.RedisScheduler` sorted
    set; pollers in every worker claim due ones under a lease and fire them by id.
``celery`` (:class:`~pystator.schedulers.fleet_celery_timers.CeleryTimerSink`)
    Timers due within a horizon are published as Celery ETA tasks after commit; later ones wait
    in the table until a publisher thread hands them over near their due time.

Redis and Celery are accelerators: a recovery sweep fires any row overdue by
``timer_recovery_seconds`` (a crash between commit and hand-off, a Redis restart that lost its
data, a lost ETA message).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Connection, Engine

from pystator.config.logs import get_logger
from pystator.fsm_core.backoff import Backoff
from pystator.fsm_core.clock import Clock, now_of
from pystator.fsm_core.errors import (
    SchedulerError,
    StoreError,
    StoreUnavailableError,
    describe_error,
)
from pystator.fsm_core.records import ArmedTimer, EntityKey
from pystator.stores.sql import submit_queries, timer_queries
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.db_clock import read_now
from pystator.stores.sql.engine import translate_errors

#: Timers one firing transaction takes at most.
DEFAULT_FIRE_BATCH = 500
DEFAULT_POLL_SECONDS = 0.05
DEFAULT_RECOVERY_SECONDS = 10.0
#: Seconds between recovery sweeps (Redis and Celery backends) and hand-off passes (Celery).
SWEEP_INTERVAL_SECONDS = 0.5
#: Backoff after a failed poll (database or Redis down).
ERROR_PAUSE_SECONDS = 1.0

#: A fire-by-id message may run this much before the timer's due time (clock skew, ETA slots);
#: earlier, it takes nothing.
FIRE_BY_ID_TOLERANCE = timedelta(seconds=1)
#: Backoff of a timer whose firing failed (the database refused its event).
DEFAULT_TIMER_RETRY = Backoff(base_seconds=1.0, max_seconds=300.0)

#: Overdue by this much, a timer handed to a worker makes the sink check whether one died.
DEATH_GRACE = timedelta(milliseconds=300)

#: Finds worker processes that died since last asked (ids); they are then recorded as stopped.
DeadWorkers = Callable[[], list[str]]

#: Called after commit with the timers a firing transaction turned into events.
FiredCallback = Callable[[Sequence[ArmedTimer], datetime], None]

log = get_logger("pystator.timers")


class TimerSink(Protocol):
    """Where the fleet's armed and cancelled timers go, and the loop that fires them."""

    name: str

    def in_transaction(
        self,
        conn: Connection,
        arm: Sequence[ArmedTimer],
        cancel: Sequence[ArmedTimer],
        now: datetime,
    ) -> None:
        """Write timers inside the worker's transaction (durable with the state change)."""

    def after_commit(self, arm: Sequence[ArmedTimer], cancel: Sequence[ArmedTimer]) -> None:
        """Hand timers to an external scheduler once the state change is committed."""

    def run(self, stop: threading.Event, tick: Callable[[], None] = ...) -> None:
        """Fire due timers until ``stop`` is set, calling ``tick`` once per round."""

    def close(self) -> None:
        """Release the backend's clients."""


def _ignore_fired(_timers: Sequence[ArmedTimer], _now: datetime) -> None:
    """The default :data:`FiredCallback`: nobody to tell."""


class TimerFiring:
    """Turns armed timer rows into events: one transaction per batch, a callback after commit.

    A batch that fails (anything but the database being unreachable) is fired again timer by
    timer, so one timer that cannot fire never holds back the others: that timer is retried with
    ``retry`` backoff and, after ``max_attempts`` failed firings, set aside with its errors
    (``worker_timers.dead_at``).
    """

    def __init__(
        self,
        engine: Engine,
        on_fired: FiredCallback = _ignore_fired,
        *,
        clock: Clock | None = None,
        max_attempts: int = 5,
        batch_size: int = DEFAULT_FIRE_BATCH,
        retry: Backoff = DEFAULT_TIMER_RETRY,
    ) -> None:
        """``clock`` None: whether a timer is due is decided by the database's clock
        (:mod:`pystator.stores.sql.db_clock`); a clock given stands in for it (tests)."""
        self.engine = engine
        self.on_fired = on_fired
        self.clock = clock
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.retry = retry

    def any_due(self, lag: timedelta = timedelta(0)) -> bool:
        """True when a timer has been due for ``lag`` or longer (one cheap read)."""
        with translate_errors("fire timers"), self.engine.connect() as conn:
            return timer_queries.any_due(conn, read_now(conn, self.clock) - lag)

    def fire_due(self, lag: timedelta = timedelta(0)) -> list[ArmedTimer]:
        """Fire up to one batch of timers due for ``lag`` or longer (default: due now)."""

        def take(conn: Connection, now: datetime) -> list[ArmedTimer]:
            return timer_queries.take_due(conn, now - lag, self.batch_size)

        try:
            return self._fire(take)
        except _BatchFailed:
            with translate_errors("fire timers"), self.engine.connect() as conn:
                ids = timer_queries.due_ids(conn, read_now(conn, self.clock) - lag, self.batch_size)
            return self._fire_each(ids)

    def fire_ids(self, timer_ids: Sequence[str]) -> list[ArmedTimer]:
        """Fire the timers among ``timer_ids`` that are still armed and due (by the fleet's
        clock, :data:`FIRE_BY_ID_TOLERANCE` early at most); returns them."""
        if not timer_ids:
            return []
        try:
            return self._fire(functools.partial(_take_ids, timer_ids=timer_ids))
        except _BatchFailed:
            return self._fire_each(timer_ids)

    def not_yet_due(self, timer_ids: Sequence[str]) -> dict[str, timedelta]:
        """Those of ``timer_ids`` still armed but not due by the fleet's clock (an external
        scheduler on a host whose clock runs ahead handed them over early), with how long
        until they are, by that clock."""
        with translate_errors("fire timers"), self.engine.connect() as conn:
            now = read_now(conn, self.clock)
            early = timer_queries.not_due(conn, timer_ids, now + FIRE_BY_ID_TOLERANCE)
        return {timer_id: due_at - now for timer_id, due_at in early.items()}

    def _fire(self, take: Callable[[Connection, datetime], list[ArmedTimer]]) -> list[ArmedTimer]:
        try:
            with translate_errors("fire timers"), transaction(self.engine) as conn:
                now = read_now(conn, self.clock)
                taken = take(conn, now)
                if taken:
                    submit_queries.insert_timer_events(
                        conn, taken, now, max_attempts=self.max_attempts
                    )
        except StoreUnavailableError:
            raise  # an outage: nothing to isolate, the timers stay armed
        except StoreError as exc:
            raise _BatchFailed(exc) from exc
        if taken:
            self.on_fired(taken, now)
        return taken

    def _fire_each(self, timer_ids: Sequence[str]) -> list[ArmedTimer]:
        fired: list[ArmedTimer] = []
        for timer_id in timer_ids:
            try:
                fired += self._fire(functools.partial(_take_ids, timer_ids=[timer_id]))
            except _BatchFailed as failed:
                self._set_back(timer_id, failed.error)
        return fired

    def _set_back(self, timer_id: str, exc: BaseException) -> None:
        """Charge a failed firing to the one timer that caused it (retry later, or set aside)."""
        try:
            with translate_errors("fire timers"), transaction(self.engine) as conn:
                now = read_now(conn, self.clock)
                dead = timer_queries.record_failure(
                    conn,
                    timer_id,
                    describe_error(exc, attempt=0, at=now),
                    max_attempts=self.max_attempts,
                    retry_at=self.retry.next_time(1, now),
                    now=now,
                )
        except StoreError as again:  # cannot even record it: the next poll tries again
            log.error("timer_failure_not_recorded", timer_id=timer_id, error=str(again))
            return
        log.warning(
            "timer_set_aside" if dead else "timer_fire_failed",
            timer_id=timer_id,
            error=f"{type(exc).__name__}: {exc}",
        )


def _take_ids(conn: Connection, now: datetime, *, timer_ids: Sequence[str]) -> list[ArmedTimer]:
    return timer_queries.take(conn, timer_ids, now + FIRE_BY_ID_TOLERANCE)


class _BatchFailed(Exception):
    """A firing transaction failed for a reason other than an outage."""

    def __init__(self, error: StoreError) -> None:
        super().__init__(str(error))
        self.error = error


def entity_keys(timers: Sequence[ArmedTimer]) -> list[EntityKey]:
    """The distinct entities of ``timers``, in order."""
    return list(dict.fromkeys((t.machine, t.entity_id) for t in timers))


def lateness_ms(timers: Sequence[ArmedTimer], now: datetime) -> float:
    """How late the latest-due of ``timers`` was at ``now``, in milliseconds."""
    due = max((t.due_at for t in timers if t.due_at is not None), default=now)
    return round((now - due).total_seconds() * 1000, 1)


def without_cancelled(arm: Sequence[ArmedTimer], cancel: Sequence[ArmedTimer]) -> list[ArmedTimer]:
    """Armed and left in the same batch: nothing to hand to an external scheduler."""
    if not cancel:
        return list(arm)
    cancelled = {t.timer_id for t in cancel}
    return [t for t in arm if t.timer_id not in cancelled]


class DbTimerSink:
    """``PYSTATOR_SCHEDULER=db``: the table is the scheduler; a poller thread fires due rows.

    Without a :class:`TimerFiring` it only stores and cancels timers (a processor in a test or
    a process that never polls).
    """

    name = "db"

    def __init__(
        self,
        firing: TimerFiring | None = None,
        *,
        poll_interval: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self.firing = firing
        self.poll_interval = poll_interval
        self._wake = threading.Event()

    def in_transaction(
        self,
        conn: Connection,
        arm: Sequence[ArmedTimer],
        cancel: Sequence[ArmedTimer],
        now: datetime,
    ) -> None:
        """Store armed timers, then delete exited ones (armed and left in one batch: gone)."""
        if arm:
            timer_queries.arm(conn, arm, now, handed_until=self.handed_until(now))
        if cancel:
            timer_queries.cancel(conn, cancel)

    def after_commit(self, arm: Sequence[ArmedTimer], cancel: Sequence[ArmedTimer]) -> None:
        """Wake this process's poller when a timer is due before its next look."""
        if arm and self.firing is not None:
            # this host's clock against due times of the database's: a skew only moves the
            # wake-up to the next poll (the poll itself asks the database what is due)
            soon = now_of(self.firing.clock) + timedelta(seconds=self.poll_interval)
            if any(t.due_at is not None and t.due_at <= soon for t in arm):
                self._wake.set()

    def handed_until(self, now: datetime) -> datetime | None:
        """Timers due by this time are handed to an external scheduler at arm time (none here)."""
        del now
        return None

    def poll_once(self) -> int:
        """Fire one batch of due timers; returns how many fired."""
        return len(self.require_firing().fire_due())

    def run(self, stop: threading.Event, tick: Callable[[], None] = lambda: None) -> None:
        """Poll until ``stop`` is set; database and Redis outages are logged, not fatal."""
        batch = self.require_firing().batch_size
        stop_wakes = threading.Thread(target=self._wake_on, args=(stop,), daemon=True)
        stop_wakes.start()
        while not stop.is_set():
            tick()
            try:
                fired = self.poll_once()
            except (StoreError, SchedulerError) as exc:
                log.warning("timer_poll_failed", scheduler=self.name, error=str(exc))
                stop.wait(ERROR_PAUSE_SECONDS)
                continue
            if fired < batch:
                self._wake.wait(self.poll_interval)
                self._wake.clear()

    def close(self) -> None:
        """Release what the backend holds (nothing here)."""

    def require_firing(self) -> TimerFiring:
        """The :class:`TimerFiring` this sink polls with (an error if it was built without)."""
        if self.firing is None:
            raise SchedulerError("this timer sink was built without a TimerFiring: it cannot poll")
        return self.firing

    def _wake_on(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()


class SweepingTimerSink(DbTimerSink):
    """An external scheduler in front of the table, with two recoveries behind it.

    - **A worker died**: a timer handed to a worker (a Celery ETA message in its memory, a claim
      in Redis) dies with it. When timers are overdue by :data:`DEATH_GRACE`, the sink asks
      ``find_dead_workers`` (the fleet's liveness check: a dead process's lock is free at once)
      and, if one died, fires every overdue timer from the table right away and hands the
      later ones over again (which of them the dead worker held is not known).
    - **The sweep**: any timer overdue by ``recovery`` is fired from the table whatever the
      reason (a hand-off that never reached the broker, a Redis restart that lost its data).
    """

    def __init__(
        self,
        firing: TimerFiring,
        *,
        poll_interval: float,
        recovery: timedelta,
    ) -> None:
        super().__init__(firing, poll_interval=poll_interval)
        self.recovery = recovery
        self.find_dead_workers: DeadWorkers | None = None
        self._last_sweep = float("-inf")

    def sweep_due(self) -> int:
        """Both recoveries, at most every :data:`SWEEP_INTERVAL_SECONDS`; returns how many
        timers they fired."""
        firing = self.require_firing()
        moment = time.monotonic()
        if moment - self._last_sweep < SWEEP_INTERVAL_SECONDS:
            return 0
        self._last_sweep = moment
        fired = self._after_deaths()
        recovered = firing.fire_due(self.recovery)
        if recovered:
            log.warning(
                "timers_recovered",
                scheduler=self.name,
                count=len(recovered),
                detail="fired from the table: their hand-off to the scheduler was lost",
            )
        return fired + len(recovered)

    def _after_deaths(self) -> int:
        firing = self.require_firing()
        if self.find_dead_workers is None or not firing.any_due(DEATH_GRACE):
            return 0
        dead = self.find_dead_workers()
        if not dead:
            return 0
        fired = 0
        while batch := firing.fire_due(DEATH_GRACE):
            fired += len(batch)
        with translate_errors("hand off timers"), transaction(firing.engine) as conn:
            rehanded = timer_queries.unhand(conn)  # the rest it held: published again
        log.warning(
            "timers_recovered_after_worker_death",
            scheduler=self.name,
            count=fired,
            handed_again=rehanded,
            dead_workers=dead,
        )
        return fired


__all__ = [
    "DEFAULT_FIRE_BATCH",
    "DEFAULT_POLL_SECONDS",
    "DEFAULT_RECOVERY_SECONDS",
    "DbTimerSink",
    "DeadWorkers",
    "FiredCallback",
    "SweepingTimerSink",
    "TimerFiring",
    "TimerSink",
    "entity_keys",
    "lateness_ms",
    "without_cancelled",
]
