"""One process's wiring of the fleet: engine, machines, producer, processor, outbox, nudger, timers.

A :class:`Runtime` is built from :class:`~pystator.config.settings.Settings` (:meth:`Runtime.from_settings`)
and handed its Celery app (a producer's app only publishes; a worker's also runs the tasks). The
process's default runtime (:func:`get_runtime`, what ``submit_event`` and the Celery tasks use) is
built on first use and rebuilt after a fork: a prefork Celery child must not share its parent's
database connections. Tests and embedding code build a :class:`Runtime` themselves or call
:func:`set_default_runtime`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy.engine import Engine

from pystator.config.logs import get_logger
from pystator.config.settings import Settings, load_settings
from pystator.fleet.batch import Batch
from pystator.fleet.celery_config import is_memory_broker, new_app
from pystator.fleet.door import Limits
from pystator.fleet.liveness import WorkerStatus, find_dead_workers
from pystator.fleet.nudge import BackgroundNudger, CeleryNudger, LocalNudger, Nudger
from pystator.fleet.observer import FleetObserver, LoggingObserver, Observers
from pystator.fleet.outbox import OutboxRunner
from pystator.fleet.processor import Processor, ProcessorOptions
from pystator.fleet.producer import Producer
from pystator.fleet.rollups import EventRollups
from pystator.fleet.tasks import timer_publisher
from pystator.fsm_core.backoff import Backoff
from pystator.fsm_core.errors import SettingsError, StoreError
from pystator.fsm_core.records import ArmedTimer
from pystator.registry.machines import MachineRegistry, load_registry
from pystator.registry.stored import StoredMachines
from pystator.schedulers.fleet_celery_timers import CeleryTimerSink
from pystator.schedulers.fleet_redis_timers import RedisTimerSink
from pystator.schedulers.fleet_timers import (
    DbTimerSink,
    SweepingTimerSink,
    TimerFiring,
    TimerSink,
    entity_keys,
)
from pystator.schedulers.redis_scheduler import RedisScheduler
from pystator.stores.sql.connections import ServerTimeouts, dispose, fleet_engine

log = get_logger("pystator.worker")

#: A worker whose heartbeat is this many intervals old is taken for dead (its host went silent).
DEAD_AFTER_BEATS = 6
#: Pool connections for a process's background duties (timers, relay, heartbeat).
DUTY_CONNECTIONS = 3
#: Threads a producer-only process is assumed to submit from (sizes its pool).
DEFAULT_PRODUCER_CONCURRENCY = 4


@dataclass
class Runtime:
    """Everything a worker or producer process needs, wired once."""

    settings: Settings
    engine: Engine
    machines: MachineRegistry
    nudger: Nudger
    app: Celery | None = None  # None with the in-process broker
    run_actions_inline: bool = True
    observer: Observers = field(default_factory=lambda: Observers([LoggingObserver()]))
    status: WorkerStatus = field(default_factory=lambda: WorkerStatus(kind="producer"))
    timer_firing: TimerFiring = field(init=False)
    timers: TimerSink = field(init=False)
    processor: Processor = field(init=False)
    outbox: OutboxRunner = field(init=False)
    producer: Producer = field(init=False)
    rollups: EventRollups = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.rollups = EventRollups()
        self.observer.add(self.rollups)  # written to event_rollups by the heartbeat
        retry = Backoff(
            base_seconds=settings.retry_base_seconds, max_seconds=settings.retry_max_seconds
        )
        self.timer_firing = TimerFiring(
            self.engine, self._timers_fired, max_attempts=settings.max_attempts, retry=retry
        )
        self.timers = make_timer_sink(settings, self.timer_firing, self.app)
        if isinstance(self.timers, SweepingTimerSink):
            self.timers.find_dead_workers = self._dead_workers
        self.outbox = OutboxRunner(
            self.engine,
            self.machines,
            retry=Backoff(
                base_seconds=settings.action_retry_base_seconds,
                max_seconds=settings.action_retry_max_seconds,
            ),
            max_attempts=settings.action_max_attempts,
            timeout=settings.action_timeout_seconds,
            observer=self.observer,
        )
        options = ProcessorOptions(
            retry=retry,
            outbox_lease=self.outbox.lease,
            batch_max_bytes=settings.batch_max_bytes,
            max_entity_context_bytes=settings.max_entity_context_bytes,
        )
        self.processor = Processor(
            self.engine,
            self.machines,
            options=options,
            timers=self.timers,
            after_commit=[self.observer.batch_committed, self._run_actions],
        )
        self.processor.observer = self.observer
        self.outbox.on_dead = self.processor.after_dead_action
        self.producer = Producer(
            engine=self.engine,
            machines=self.machines,
            nudger=self.nudger,
            limits=Limits(
                max_context_bytes=settings.max_context_bytes,
                max_context_depth=settings.max_context_depth,
            ),
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        machines: MachineRegistry | None = None,
        app: Celery | None = None,
        observers: Sequence[FleetObserver] = (),
        concurrency: int = DEFAULT_PRODUCER_CONCURRENCY,
        guards: Any | None = None,
        actions: Any | None = None,
    ) -> Runtime:
        """Wire a runtime from settings (machines from the database registry, then
        ``settings.machines``, with ``settings.app``'s guards and actions, or ``guards`` and
        ``actions`` when given; a ``machines`` registry passed in is used as given).

        ``app`` is the Celery app to publish on (a worker passes the app it runs); by default a
        publishing-only app on ``settings.broker_url`` (none for the in-process broker).
        ``concurrency`` is how many threads of this process work at once: the connection pool
        is sized from it (:func:`pool_size`).
        """
        settings = settings or load_settings()
        observer = Observers([LoggingObserver(), *observers])
        if not is_memory_broker(settings.broker_url):
            app = app or new_app(settings)
        engine = settings_engine(settings, pool_size(settings, concurrency))
        try:
            return cls(
                settings=settings,
                engine=engine,
                machines=(
                    machines
                    if machines is not None
                    else machine_registry(settings, engine, guards=guards, actions=actions)
                ),
                nudger=make_nudger(settings, app, observer),
                app=app,
                observer=observer,
            )
        except BaseException:
            dispose(engine)  # the first registry load already pooled a connection
            raise

    @property
    def queue(self) -> str:
        """The Celery queue of this deployment (``PYSTATOR_QUEUE``)."""
        return self.settings.queue

    def _dead_workers(self) -> list[str]:
        stale = timedelta(seconds=DEAD_AFTER_BEATS * self.settings.heartbeat_seconds)
        return find_dead_workers(self.engine, stale_after=stale)

    def _timers_fired(self, timers: Sequence[ArmedTimer], now: datetime) -> None:
        self.nudger.nudge(entity_keys(timers))
        self.observer.timers_fired(timers, now)

    def _run_actions(self, batch: Batch) -> None:
        if self.run_actions_inline and batch.action_ids:
            self.outbox.run(batch.outbox_rows(), deadline=batch.lease_until)

    def serve_as_worker(self, **info: Any) -> None:
        """Make this the runtime of this worker process: its id (``PYSTATOR_WORKER_ID`` when
        set), what its heartbeat reports (``info``), and the default runtime of
        ``submit_event`` in this process."""
        if self.settings.worker_id:
            self.status.worker_id = self.settings.worker_id
        self.status.info.update(info)
        set_default_runtime(self)

    def relay_grace(self) -> timedelta:
        """How long a just-submitted due event may wait for its own nudge before the relay acts."""
        return timedelta(seconds=max(2 * self.settings.relay_interval_seconds, 1.0))

    def close(self) -> None:
        """Write the event counts not yet written, release database connections, the timer
        backend's client and the action threads; stop being this process's default runtime."""
        with _lock:
            for key in [k for k, runtime in _default.items() if runtime is self]:
                del _default[key]
        try:
            self.rollups.flush(self.engine)
        except StoreError as exc:
            log.warning("rollups_not_written", error=str(exc))
        self.timers.close()
        self.outbox.close()
        self.machines.close_stored(self.engine)
        dispose(self.engine)


def pool_size(settings: Settings, concurrency: int) -> int:
    """Connections one process keeps (``PYSTATOR_DB_POOL_SIZE``, else derived): one per working
    thread plus :data:`DUTY_CONNECTIONS` for the timers, the relay and the heartbeat. The pool
    never grows past it: a thread that finds it empty waits, then gets a
    :class:`~pystator.fsm_core.errors.StoreUnavailableError`."""
    return settings.db_pool_size or max(concurrency, 1) + DUTY_CONNECTIONS


def settings_engine(settings: Settings, size: int) -> Engine:
    """The fleet engine on ``settings.database_url``: a fixed pool of ``size`` connections with
    the settings' server-side timeouts."""
    return fleet_engine(
        settings.database_url,
        pool_size=size,
        timeouts=ServerTimeouts(
            statement_seconds=settings.statement_timeout_seconds,
            idle_in_transaction_seconds=settings.idle_in_transaction_timeout_seconds,
        ),
    )


def machine_registry(
    settings: Settings, engine: Engine, *, guards: Any | None = None, actions: Any | None = None
) -> MachineRegistry:
    """The process's machines: the database registry on ``engine`` (refreshed every
    ``PYSTATOR_REGISTRY_REFRESH_SECONDS``), then ``PYSTATOR_MACHINES`` (unless
    ``PYSTATOR_WORKER_MACHINE_SOURCE=db``); with the guards and actions of ``PYSTATOR_APP``,
    or ``guards`` and ``actions`` when given (bound before the registry's first load)."""
    registry = load_registry(settings.machine_files, settings.app)
    registry.bind(guards, actions)
    stored = StoredMachines(engine, refresh_seconds=settings.registry_refresh_seconds)
    registry.attach(stored)
    stored.refresh()  # the first load, before any transaction (see stored_machines)
    return registry


def make_nudger(
    settings: Settings, app: Celery | None = None, observer: FleetObserver | None = None
) -> Nudger:
    """The nudger for ``settings.broker_url``: Celery messages published from a background
    thread, or local wake-ups with the in-process broker (``app`` defaults to a new one)."""
    if is_memory_broker(settings.broker_url):
        return LocalNudger()
    celery = app or new_app(settings)
    return BackgroundNudger(CeleryNudger(celery, settings.queue, observer or LoggingObserver()))


def make_timer_sink(settings: Settings, firing: TimerFiring, app: Celery | None) -> TimerSink:
    """The timer backend ``settings.scheduler`` names (``PYSTATOR_SCHEDULER``)."""
    recovery = timedelta(seconds=settings.timer_recovery_seconds)
    if settings.scheduler == "db":
        return DbTimerSink(firing, poll_interval=settings.timer_poll_seconds)
    if settings.scheduler == "redis":
        assert settings.redis_url is not None  # Settings refuses redis without a URL
        scheduler = RedisScheduler(
            settings.redis_url, prefix=f"pystator:{settings.queue}:timers", clock=firing.clock
        )
        return RedisTimerSink(
            firing, scheduler, poll_interval=settings.timer_poll_seconds, recovery=recovery
        )
    if settings.scheduler == "celery":
        if app is None:
            raise SettingsError(
                "PYSTATOR_SCHEDULER=celery needs a real broker: set PYSTATOR_BROKER_URL "
                "(the in-process broker of the embedded mode cannot hold ETA tasks)"
            )
        horizon = timedelta(seconds=settings.timer_horizon_seconds)
        publish = timer_publisher(app, settings.queue)
        return CeleryTimerSink(firing, publish, horizon=horizon, recovery=recovery)
    raise SettingsError(
        f"PYSTATOR_SCHEDULER={settings.scheduler}: the asyncio scheduler keeps timers in one "
        "process's memory, which the worker fleet cannot use; choose db, redis or celery "
        "(asyncio is for the Orchestrator alone)"
    )


_lock = threading.Lock()
_default: dict[tuple[int, str | None], Runtime] = {}
_configured: list[Settings] = []
_concurrency: list[int] = [DEFAULT_PRODUCER_CONCURRENCY]
_observers: list[Callable[[], FleetObserver]] = []


def configure(
    settings: Settings,
    *,
    concurrency: int | None = None,
    observers: Sequence[Callable[[], FleetObserver]] | None = None,
) -> None:
    """Use ``settings`` (instead of the environment) for runtimes built from now on, and size
    their pools for ``concurrency`` working threads.

    The ``pystator worker`` command calls this with its command-line overrides before Celery
    starts, so forked pool children inherit it (they then size themselves for one task).
    ``observers`` are factories of the observers every runtime built from now on attaches
    (metrics: one instance per process).
    """
    with _lock:
        _configured[:] = [settings]
        if concurrency is not None:
            _concurrency[:] = [concurrency]
        if observers is not None:
            _observers[:] = list(observers)
        _default.clear()


def current_settings() -> Settings:
    """The configured settings, else the environment's."""
    return _configured[0] if _configured else load_settings()


def get_runtime(db_url: str | None = None) -> Runtime:
    """This process's runtime for ``db_url`` (default: the settings' database)."""
    key = (os.getpid(), db_url)
    runtime = _default.get(key)
    if runtime is not None:
        return runtime
    with _lock:
        runtime = _default.get(key)
        if runtime is None:
            settings = current_settings()
            if db_url is not None:
                settings = replace(settings, database_url=db_url)
            runtime = Runtime.from_settings(
                settings,
                concurrency=_concurrency[0],
                observers=[factory() for factory in _observers],
            )
            _default[key] = runtime
    return runtime


def set_default_runtime(runtime: Runtime | None, db_url: str | None = None) -> None:
    """Install (or with None, forget) the runtime :func:`get_runtime` returns in this process."""
    key = (os.getpid(), db_url)
    with _lock:
        if runtime is None:
            _default.pop(key, None)
        else:
            _default[key] = runtime


__all__ = [
    "Runtime",
    "configure",
    "current_settings",
    "get_runtime",
    "machine_registry",
    "make_nudger",
    "make_timer_sink",
    "set_default_runtime",
    "settings_engine",
]
