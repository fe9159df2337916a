"""The fleet's timers: where an armed ``after:``/``timeout:`` timer is kept and what fires it.

Whatever the scheduler, an armed timer is a ``worker_timers`` row written in the transaction that
entered its state (durable with the state change) and deleted by the one that leaves it. Firing a
timer deletes its row and inserts its event (origin ``timer``, carrying the state entry) in one
transaction, so it fires at most once whoever gets there first, and the event takes its place in
the entity's order when it fires, not when it was armed. The step drops (``stale``) a fired timer
whose state entry has been left meanwhile. The schedulers differ in what notices the due time:

``db`` (:class:`TableTimers`, the default)
    A poller thread in every worker takes due rows every ``timer_poll_seconds``; PostgreSQL's
    ``SKIP LOCKED`` shares them between workers.
``redis`` (:class:`RedisTimers`)
    After commit the timer also goes into a :class:`~pystator.schedulers.RedisScheduler` sorted
    set; pollers in every worker claim due ones under a lease and fire them by id.
``celery`` (:class:`CeleryTimers`)
    Timers due within ``timer_horizon_seconds`` are published as Celery ETA tasks after commit;
    later ones wait in the table until a publisher thread hands them over near their due time, so
    no worker holds a message for hours and no broker visibility timeout is outlived. A
    redelivered ETA task finds no row and does nothing.

Redis and Celery are accelerators: a recovery sweep fires any row overdue by
``timer_recovery_seconds`` (a crash between commit and hand-off, a Redis restart that lost its
data, a lost ETA message).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection, Engine

from pystator.fsm_core.errors import SchedulerError, SettingsError, StoreError
from pystator.fsm_core.records import ArmedTimer
from pystator.logging import get_logger
from pystator.stores.sql import event_queries, timer_queries
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.event_queries import EntityKey
from pystator.worker.clock import Clock, utc_now
from pystator.worker.database import transaction
from pystator.worker.nudge import Nudger, NullNudger

if TYPE_CHECKING:
    from celery import Celery

    from pystator.schedulers.redis_scheduler import RedisScheduler
    from pystator.settings import Settings

FIRE_TIMER_TASK = "pystator.fire_timers"
#: Timers due within one such slot share one ETA task (its ETA: the slot's latest due time).
ETA_SLOT = timedelta(milliseconds=10)
#: Timers one firing transaction takes at most.
DEFAULT_FIRE_BATCH = 500
DEFAULT_POLL_SECONDS = 0.05
DEFAULT_RECOVERY_SECONDS = 10.0
DEFAULT_HORIZON_SECONDS = 60.0
#: Seconds between recovery sweeps (Redis and Celery modes) and hand-off passes (Celery).
SWEEP_INTERVAL_SECONDS = 1.0
#: Backoff after a failed poll (database or Redis down).
ERROR_PAUSE_SECONDS = 1.0

log = get_logger("pystator.timers")


class TimerFiring:
    """Turns armed timer rows into events: one transaction per batch, nudges after commit."""

    def __init__(
        self,
        engine: Engine,
        nudger: Nudger | None = None,
        *,
        clock: Clock = utc_now,
        max_attempts: int = 5,
        batch_size: int = DEFAULT_FIRE_BATCH,
    ) -> None:
        self.engine = engine
        self.nudger: Nudger = nudger or NullNudger()
        self.clock = clock
        self.max_attempts = max_attempts
        self.batch_size = batch_size

    def fire_due(self, due_by: datetime | None = None, *, nudge: bool = True) -> list[ArmedTimer]:
        """Fire up to one batch of timers due by ``due_by`` (default now); returns them."""
        moment = self.clock() if due_by is None else due_by
        return self._fire(
            lambda conn: timer_queries.take_due(conn, moment, self.batch_size), nudge=nudge
        )

    def fire_ids(self, timer_ids: Sequence[str], *, nudge: bool = True) -> list[ArmedTimer]:
        """Fire the timers among ``timer_ids`` that are still armed; returns them."""
        if not timer_ids:
            return []
        return self._fire(lambda conn: timer_queries.take(conn, timer_ids), nudge=nudge)

    def _fire(
        self, take: Callable[[Connection], list[ArmedTimer]], *, nudge: bool
    ) -> list[ArmedTimer]:
        now = self.clock()
        with translate_errors("fire timers"), transaction(self.engine) as conn:
            taken = take(conn)
            if taken:
                event_queries.insert_timer_events(conn, taken, now, max_attempts=self.max_attempts)
        if taken:
            if nudge:
                self.nudger.nudge(entity_keys(taken))
            log.debug("timers_fired", count=len(taken), late_ms=_late_ms(taken, now))
        return taken


def entity_keys(timers: Sequence[ArmedTimer]) -> list[EntityKey]:
    """The distinct entities of ``timers``, in order."""
    return list(dict.fromkeys((t.machine, t.entity_id) for t in timers))


def _late_ms(timers: Sequence[ArmedTimer], now: datetime) -> float:
    due = max((t.due_at for t in timers if t.due_at is not None), default=now)
    return round((now - due).total_seconds() * 1000, 1)


def _without_cancelled(arm: Sequence[ArmedTimer], cancel: Sequence[ArmedTimer]) -> list[ArmedTimer]:
    """Armed and left in the same batch: nothing to hand to an external scheduler."""
    if not cancel:
        return list(arm)
    cancelled = {t.timer_id for t in cancel}
    return [t for t in arm if t.timer_id not in cancelled]


class TableTimers:
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
        self._thread: threading.Thread | None = None

    # --- TimerSink ------------------------------------------------------------------------

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
            soon = self.firing.clock() + timedelta(seconds=self.poll_interval)
            if any(t.due_at is not None and t.due_at <= soon for t in arm):
                self._wake.set()

    def handed_until(self, now: datetime) -> datetime | None:
        """Timers due by this time are handed to an external scheduler at arm time (none here)."""
        return None

    # --- polling --------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Fire one batch of due timers; returns how many fired."""
        return len(self._firing().fire_due())

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; database and Redis outages are logged, not fatal."""
        batch = self._firing().batch_size
        while not stop.is_set():
            try:
                fired = self.poll_once()
            except (StoreError, SchedulerError) as exc:
                log.warning("timer_poll_failed", scheduler=self.name, error=str(exc))
                stop.wait(ERROR_PAUSE_SECONDS)
                continue
            if fired < batch:
                self._wake.wait(self.poll_interval)
                self._wake.clear()

    def start_thread(self, stop: threading.Event) -> threading.Thread:
        """Run :meth:`run` in a daemon thread (once per process)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self.run, args=(stop,), name=f"pystator-timers-{self.name}", daemon=True
            )
            self._thread.start()
            stop_wakes = threading.Thread(target=self._wake_on, args=(stop,), daemon=True)
            stop_wakes.start()
        return self._thread

    def close(self) -> None:
        """Release what the scheduler holds (nothing here)."""

    def _wake_on(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()

    def _firing(self) -> TimerFiring:
        if self.firing is None:
            raise SchedulerError("this timer sink was built without a TimerFiring: it cannot poll")
        return self.firing


class _SweepingTimers(TableTimers):
    """An external scheduler in front of the table, with the recovery sweep behind it."""

    def __init__(
        self,
        firing: TimerFiring,
        *,
        poll_interval: float,
        recovery: timedelta,
    ) -> None:
        super().__init__(firing, poll_interval=poll_interval)
        self.recovery = recovery
        self._last_sweep = 0.0

    def sweep_due(self) -> int:
        """Fire rows overdue by ``recovery`` (their hand-off was lost); at most every second."""
        firing = self._firing()
        now = firing.clock()
        if now.timestamp() - self._last_sweep < SWEEP_INTERVAL_SECONDS:
            return 0
        self._last_sweep = now.timestamp()
        recovered = firing.fire_due(now - self.recovery)
        if recovered:
            log.warning(
                "timers_recovered",
                scheduler=self.name,
                count=len(recovered),
                detail="fired from the table: their hand-off to the scheduler was lost",
            )
        return len(recovered)


class RedisTimers(_SweepingTimers):
    """``PYSTATOR_SCHEDULER=redis``: a Redis sorted set notices due timers; the table keeps them."""

    name = "redis"

    def __init__(
        self,
        firing: TimerFiring,
        scheduler: RedisScheduler,
        *,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        recovery: timedelta = timedelta(seconds=DEFAULT_RECOVERY_SECONDS),
    ) -> None:
        super().__init__(firing, poll_interval=poll_interval, recovery=recovery)
        self.scheduler = scheduler

    def after_commit(self, arm: Sequence[ArmedTimer], cancel: Sequence[ArmedTimer]) -> None:
        """Hand the committed timers to Redis (a failure is logged: the sweep covers it)."""
        try:
            self.scheduler.arm(_without_cancelled(arm, cancel))
            self.scheduler.cancel(cancel)
        except SchedulerError as exc:
            log.warning("timer_handoff_failed", scheduler=self.name, error=str(exc))

    def poll_once(self) -> int:
        """Claim due timers in Redis and fire them; then, at most every second, the sweep."""
        claimed = self.scheduler.claim_due()
        fired = 0
        if claimed:
            ids = [t.timer_id for t in claimed]
            try:
                fired = len(self._firing().fire_ids(ids))
            except StoreError:
                retry_at = self._firing().clock() + timedelta(seconds=ERROR_PAUSE_SECONDS)
                self.scheduler.release(ids, due_at=retry_at)
                raise
            self.scheduler.ack(ids)
        self.sweep_due()
        return max(fired, len(claimed))

    def close(self) -> None:
        """Close the Redis client."""
        self.scheduler.close()


class CeleryTimers(_SweepingTimers):
    """``PYSTATOR_SCHEDULER=celery``: timers as Celery ETA tasks, published near their due time."""

    name = "celery"

    def __init__(
        self,
        firing: TimerFiring,
        app: Celery,
        queue: str,
        *,
        horizon: timedelta = timedelta(seconds=DEFAULT_HORIZON_SECONDS),
        recovery: timedelta = timedelta(seconds=DEFAULT_RECOVERY_SECONDS),
    ) -> None:
        super().__init__(firing, poll_interval=SWEEP_INTERVAL_SECONDS, recovery=recovery)
        self.app = app
        self.queue = queue
        self.horizon = horizon

    def handed_until(self, now: datetime) -> datetime | None:
        """Timers due within the horizon are published right after commit."""
        return now + self.horizon

    def after_commit(self, arm: Sequence[ArmedTimer], cancel: Sequence[ArmedTimer]) -> None:
        """Publish the committed timers due within the horizon (cancelling needs nothing:
        the ETA task of a cancelled timer finds no row)."""
        until = self._firing().clock() + self.horizon
        soon = [t for t in _without_cancelled(arm, cancel) if t.due_at and t.due_at <= until]
        self.publish(soon)

    def publish(self, timers: Sequence[ArmedTimer]) -> int:
        """Send ETA tasks, one per 10 ms slot of due times (a broker consumer takes few ETA
        messages at a time, so one message per timer would make a burst of timers late);
        a broker failure is logged (the sweep covers it). Returns how many timers were sent."""
        sent = 0
        try:
            for eta, ids in eta_slots(timers):
                self.app.send_task(
                    FIRE_TIMER_TASK,
                    args=[ids],
                    eta=eta,
                    queue=self.queue,
                    ignore_result=True,
                )
                sent += len(ids)
        except Exception as exc:  # kombu/amqp errors
            log.warning("timer_handoff_failed", scheduler=self.name, error=str(exc), sent=sent)
        return sent

    def poll_once(self) -> int:
        """Hand over timers that came within the horizon, then run the recovery sweep."""
        firing = self._firing()
        now = firing.clock()
        handed = 0
        while True:
            with translate_errors("hand off timers"), transaction(firing.engine) as conn:
                batch = timer_queries.hand_off(conn, now + self.horizon, now, firing.batch_size)
            handed += self.publish(batch)
            if len(batch) < firing.batch_size:
                break
        return handed + self.sweep_due()


def eta_slots(timers: Sequence[ArmedTimer]) -> list[tuple[datetime, list[str]]]:
    """Group timers into :data:`ETA_SLOT`-wide slots of due time: (latest due, timer ids)."""
    slots: dict[int, list[ArmedTimer]] = {}
    width = ETA_SLOT.total_seconds()
    for timer in timers:
        if timer.due_at is not None:
            slots.setdefault(int(timer.due_at.timestamp() // width), []).append(timer)
    return [
        (max(t.due_at for t in group if t.due_at is not None), [t.timer_id for t in group])
        for _slot, group in sorted(slots.items())
    ]


def fire_timers_task(timer_ids: list[str] | str) -> int:
    """The ``pystator.fire_timers`` Celery task: fire the timers still armed (a redelivered task
    finds no rows and does nothing) and nudge their entities. Applying them here instead made
    each task several transactions long, and a burst of timer tasks queued up behind itself."""
    from pystator.worker.runtime import get_runtime

    ids = [timer_ids] if isinstance(timer_ids, str) else list(timer_ids)
    return len(get_runtime().firing.fire_ids(ids))


def make_timers(
    settings: Settings,
    engine: Engine,
    nudger: Nudger,
    *,
    queue: str,
    app_for: Callable[[], Celery],
    clock: Clock = utc_now,
) -> tuple[TableTimers, TimerFiring]:
    """The timer scheduler ``settings.scheduler`` names, wired to ``engine`` and ``nudger``."""
    firing = TimerFiring(engine, nudger, clock=clock, max_attempts=settings.max_attempts)
    recovery = timedelta(seconds=settings.timer_recovery_seconds)
    if settings.scheduler == "db":
        return TableTimers(firing, poll_interval=settings.timer_poll_seconds), firing
    if settings.scheduler == "redis":
        from pystator.schedulers.redis_scheduler import RedisScheduler

        assert settings.redis_url is not None  # Settings refuses redis without a URL
        scheduler = RedisScheduler(
            settings.redis_url, prefix=f"pystator:{queue}:timers", clock=clock
        )
        timers = RedisTimers(
            firing, scheduler, poll_interval=settings.timer_poll_seconds, recovery=recovery
        )
        return timers, firing
    if settings.scheduler == "celery":
        horizon = timedelta(seconds=settings.timer_horizon_seconds)
        return CeleryTimers(firing, app_for(), queue, horizon=horizon, recovery=recovery), firing
    raise SettingsError(
        f"PYSTATOR_SCHEDULER={settings.scheduler}: the asyncio scheduler keeps timers in one "
        "process's memory, which the worker fleet cannot use; choose db, redis or celery "
        "(asyncio is for the Orchestrator alone)"
    )


__all__ = [
    "FIRE_TIMER_TASK",
    "CeleryTimers",
    "RedisTimers",
    "TableTimers",
    "TimerFiring",
    "entity_keys",
    "eta_slots",
    "fire_timers_task",
    "make_timers",
]
