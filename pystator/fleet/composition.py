"""The composition root: every runtime piece a process needs, built from :class:`Settings`.

The worker (:class:`~pystator.fleet.runtime.Runtime`), the HTTP API
(:func:`pystator.api.app_services.build_services`), the embedded mode
(:class:`~pystator.fleet.worker.Worker`, ``pystator demo``) and the CLI commands build their
database engine, machine registry, nudger, producer, outbox runner, apply-loop options and timer
backend here, and nowhere else. A setting therefore means the same thing in every process, and
a new tuning knob is wired in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import Celery
from sqlalchemy.engine import Engine

from pystator.config.settings import Settings
from pystator.fleet.broker_depth import queue_depth_reader
from pystator.fleet.celery_config import is_memory_broker, new_app
from pystator.fleet.door import Limits
from pystator.fleet.nudge import BackgroundNudger, CeleryNudger, LocalNudger, Nudger
from pystator.fleet.nudge_gate import NudgeGate
from pystator.fleet.observer import FleetObserver, LoggingObserver
from pystator.fleet.outbox import OutboxRunner
from pystator.fleet.processor import ProcessorOptions
from pystator.fleet.producer import Producer
from pystator.fleet.tasks import timer_publisher
from pystator.fsm_core.backoff import Backoff
from pystator.fsm_core.clock import utc_now
from pystator.fsm_core.errors import SettingsError
from pystator.registry.machines import MachineRegistry, load_registry
from pystator.registry.stored import StoredMachines
from pystator.schedulers.fleet_celery_timers import CeleryTimerSink
from pystator.schedulers.fleet_redis_timers import RedisTimerSink
from pystator.schedulers.fleet_timers import DbTimerSink, TimerFiring, TimerSink
from pystator.schedulers.redis_scheduler import RedisScheduler
from pystator.stores.sql.connections import ServerTimeouts, dispose, fleet_engine
from pystator.stores.sql.migrator import prepare_embedded

#: Pool connections for a process's background duties (timers, relay, heartbeat).
DUTY_CONNECTIONS = 3
#: Threads a producer-only process is assumed to submit from (sizes its pool).
DEFAULT_PRODUCER_CONCURRENCY = 4
#: Connections of an operator command's engine (one command, one thread).
COMMAND_CONNECTIONS = 1


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


def prepare_database(settings: Settings) -> None:
    """Create or upgrade an embedded SQLite database's schema (PostgreSQL is left to
    ``pystator db upgrade``, a deployment step)."""
    prepare_embedded(settings.database_url)


@contextmanager
def command_engine(
    settings: Settings, *, connections: int = COMMAND_CONNECTIONS, prepare: bool = False
) -> Iterator[Engine]:
    """The database engine of one operator command, disposed when it ends (on errors too);
    ``prepare`` first migrates an embedded SQLite database. No server-side timeouts: an
    operator's bulk change may run longer than a worker's statement is allowed to."""
    if prepare:
        prepare_database(settings)
    engine = fleet_engine(settings.database_url, pool_size=connections)
    try:
        yield engine
    finally:
        dispose(engine)


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
    stored.refresh()  # the first load, before any transaction (see registry.stored)
    return registry


def make_nudger(
    settings: Settings, app: Celery | None = None, observer: FleetObserver | None = None
) -> Nudger:
    """The nudger for ``settings.broker_url``: Celery messages published from a background
    thread, or local wake-ups with the in-process broker (``app`` defaults to a new one)."""
    if is_memory_broker(settings.broker_url):
        return LocalNudger()
    celery = app or new_app(settings)
    observer = observer or LoggingObserver()
    return BackgroundNudger(CeleryNudger(celery, settings.queue, observer, nudge_gate(settings)))


def nudge_gate(settings: Settings) -> NudgeGate | None:
    """The gate that keeps the broker's nudge queue below ``PYSTATOR_NUDGE_QUEUE_MAX`` (None
    when that is 0, or the broker's queue depth cannot be read)."""
    if settings.nudge_queue_max <= 0:
        return None
    reader = queue_depth_reader(settings.broker_url, settings.queue)
    return None if reader is None else NudgeGate(reader, bound=settings.nudge_queue_max)


def door_limits(settings: Settings) -> Limits:
    """What a submitted event may look like (``PYSTATOR_MAX_CONTEXT_BYTES`` / ``…_DEPTH``)."""
    return Limits(
        max_context_bytes=settings.max_context_bytes, max_context_depth=settings.max_context_depth
    )


def make_producer(
    settings: Settings, engine: Engine, machines: MachineRegistry, nudger: Nudger
) -> Producer:
    """Submitting events: the door's limits from the settings, nudges through ``nudger``."""
    return Producer(engine=engine, machines=machines, nudger=nudger, limits=door_limits(settings))


def event_retry(settings: Settings) -> Backoff:
    """How failed events (and failed timer firings) back off between attempts."""
    return Backoff(base_seconds=settings.retry_base_seconds, max_seconds=settings.retry_max_seconds)


def make_outbox(
    settings: Settings, engine: Engine, machines: MachineRegistry, observer: FleetObserver
) -> OutboxRunner:
    """Running committed actions: their retries, attempts, timeout and threads."""
    return OutboxRunner(
        engine,
        machines,
        retry=Backoff(
            base_seconds=settings.action_retry_base_seconds,
            max_seconds=settings.action_retry_max_seconds,
        ),
        max_attempts=settings.action_max_attempts,
        timeout=settings.action_timeout_seconds,
        threads=settings.action_threads,
        observer=observer,
    )


def processor_options(settings: Settings, *, outbox_lease: timedelta) -> ProcessorOptions:
    """The apply loop's limits per transaction (entities, events, bytes) and its retries."""
    return ProcessorOptions(
        batch_entities=settings.batch_entities,
        events_per_entity=settings.batch_events_per_entity,
        retry=event_retry(settings),
        outbox_lease=outbox_lease,
        batch_max_bytes=settings.batch_max_bytes,
        max_entity_context_bytes=settings.max_entity_context_bytes,
    )


def make_timer_sink(settings: Settings, firing: TimerFiring, app: Celery | None) -> TimerSink:
    """The timer backend ``settings.scheduler`` names (``PYSTATOR_SCHEDULER``)."""
    recovery = timedelta(seconds=settings.timer_recovery_seconds)
    if settings.scheduler == "db":
        return DbTimerSink(firing, poll_interval=settings.timer_poll_seconds)
    if settings.scheduler == "redis":
        assert settings.redis_url is not None  # Settings refuses redis without a URL
        scheduler = RedisScheduler(
            settings.redis_url,
            prefix=f"pystator:{settings.queue}:timers",
            clock=firing.clock or utc_now,  # Redis orders by host time; the database decides
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


__all__ = [
    "COMMAND_CONNECTIONS",
    "DEFAULT_PRODUCER_CONCURRENCY",
    "DUTY_CONNECTIONS",
    "command_engine",
    "dispose",
    "door_limits",
    "event_retry",
    "machine_registry",
    "make_nudger",
    "make_outbox",
    "make_producer",
    "make_timer_sink",
    "nudge_gate",
    "pool_size",
    "prepare_database",
    "processor_options",
    "settings_engine",
]
