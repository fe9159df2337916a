"""One process's fleet: engine, machines, producer, processor, outbox, nudger, timers.

A :class:`Runtime` holds the pieces :mod:`pystator.fleet.composition` builds from
:class:`~pystator.config.settings.Settings` (:meth:`Runtime.from_settings`) and is handed its
Celery app (a producer's app only publishes; a worker's also runs the tasks). The
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
from pystator.fleet.composition import (
    DEFAULT_PRODUCER_CONCURRENCY,
    dispose,
    event_retry,
    machine_registry,
    make_nudger,
    make_outbox,
    make_producer,
    make_timer_sink,
    pool_size,
    processor_options,
    settings_engine,
)
from pystator.fleet.liveness import WorkerStatus, find_dead_workers
from pystator.fleet.nudge import Nudger
from pystator.fleet.observer import FleetObserver, LoggingObserver, Observers
from pystator.fleet.outbox import OutboxRunner
from pystator.fleet.processor import Processor
from pystator.fleet.producer import Producer
from pystator.fleet.rollups import EventRollups
from pystator.fleet.shadow import ShadowBook
from pystator.fleet.webhooks import (
    SEND_THREADS,
    WEBHOOK_ACTION,
    WebhookDispatcher,
    WebhookSender,
)
from pystator.fsm_core.errors import StoreError
from pystator.fsm_core.records import ArmedTimer
from pystator.registry.machines import MachineRegistry
from pystator.schedulers.fleet_timers import (
    SweepingTimerSink,
    TimerFiring,
    TimerSink,
    entity_keys,
)

log = get_logger("pystator.worker")

#: A worker whose heartbeat is this many intervals old is taken for dead (its host went silent).
DEAD_AFTER_BEATS = 6


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
    webhooks: WebhookDispatcher = field(init=False)
    webhook_sender: WebhookSender = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.rollups = EventRollups()
        self.observer.add(self.rollups)  # written to event_rollups by the heartbeat
        self.timer_firing = TimerFiring(
            self.engine,
            self._timers_fired,
            max_attempts=settings.max_attempts,
            retry=event_retry(settings),
        )
        self.timers = make_timer_sink(settings, self.timer_firing, self.app)
        if isinstance(self.timers, SweepingTimerSink):
            self.timers.find_dead_workers = self._dead_workers
        self.outbox = make_outbox(settings, self.engine, self.machines, self.observer)
        self.processor = Processor(
            self.engine,
            self.machines,
            options=processor_options(settings, outbox_lease=self.outbox.lease),
            timers=self.timers,
            after_commit=[self.observer.batch_committed, self._run_actions],
        )
        self.processor.observer = self.observer
        self.processor.shadows = ShadowBook(self.engine, bind=self.machines.bind_to)
        self.outbox.on_dead = self.processor.after_dead_action
        # webhook deliveries run from the outbox; the relay's pass queues them
        self.webhook_sender = WebhookSender(self.engine, clock=self.processor.clock)
        self.outbox.handlers[WEBHOOK_ACTION] = self.webhook_sender
        self.outbox.handler_threads[WEBHOOK_ACTION] = SEND_THREADS  # a sweep's, side by side
        self.outbox.recorders.append(self.webhook_sender.record)
        self.webhooks = WebhookDispatcher(self.engine, clock=self.processor.clock)
        self.producer = make_producer(settings, self.engine, self.machines, self.nudger)

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
            self.outbox.run(batch.outbox_rows(), deadline=batch.lease_deadline)

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
        backend's client, the action threads and the webhook connections; stop being this
        process's default runtime."""
        with _lock:
            for key in [k for k, runtime in _default.items() if runtime is self]:
                del _default[key]
        try:
            self.rollups.flush(self.engine)
        except StoreError as exc:
            log.warning("rollups_not_written", error=str(exc))
        if self.processor.shadows is not None:
            self.processor.shadows.close()
        self.timers.close()
        self.outbox.close()
        self.webhook_sender.close()  # its kept-alive connections to the receivers
        self.machines.close_stored(self.engine)
        dispose(self.engine)


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
    "set_default_runtime",
]
