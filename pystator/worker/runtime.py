"""One process's wiring of the fleet: engine, machines, producer, processor, outbox, nudger.

Built from :class:`~pystator.settings.Settings` on first use and rebuilt after a fork (a prefork
Celery child must not share its parent's database connections). Tests and embedding code build a
:class:`Runtime` themselves or call :func:`set_default_runtime`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.errors import SettingsError
from pystator.logging import get_logger
from pystator.settings import Settings, load_settings
from pystator.worker.batch import APPLIED, Batch, EventResult
from pystator.worker.database import dispose, worker_engine
from pystator.worker.nudge import BackgroundNudger, LocalNudger, Nudger
from pystator.worker.outbox import OutboxRunner
from pystator.worker.processor import Processor, ProcessorOptions
from pystator.worker.producer import Limits, Producer
from pystator.worker.registry import MachineRegistry, load_registry
from pystator.worker.retry import RetryPolicy
from pystator.worker.timers import TableTimers, TimerFiring, make_timers

if TYPE_CHECKING:
    from celery import Celery

MEMORY_BROKER = "memory://"
DEFAULT_QUEUE = "pystator"

log = get_logger("pystator.worker")


def is_memory_broker(url: str) -> bool:
    """True for the in-process broker (no cross-process nudges: workers poll)."""
    return url.startswith("memory://")


def celery_app(settings: Settings, queue: str) -> Celery:
    """The fleet's Celery app for ``settings.broker_url`` (the environment's, or a new one)."""
    if is_memory_broker(settings.broker_url):
        raise SettingsError(
            "PYSTATOR_SCHEDULER=celery needs a real broker: set PYSTATOR_BROKER_URL "
            "(the in-process broker of the embedded mode cannot hold ETA tasks)"
        )
    from pystator.worker.app import app, make_app

    if app.conf.broker_url != settings.broker_url:
        return make_app(settings.broker_url, queue)  # settings other than the environment's
    return app


def make_nudger(settings: Settings, queue: str) -> Nudger:
    """The nudger for ``settings.broker_url`` (local wake-ups for the in-process broker)."""
    if is_memory_broker(settings.broker_url):
        return LocalNudger()
    from pystator.worker.nudge import CeleryNudger

    return BackgroundNudger(CeleryNudger(celery_app(settings, queue), queue))


@dataclass
class Runtime:
    """Everything a worker or producer process needs, wired once."""

    settings: Settings
    engine: Engine
    machines: MachineRegistry
    nudger: Nudger
    queue: str = DEFAULT_QUEUE
    run_actions_inline: bool = True
    timers: TableTimers | None = None  # default: the table scheduler (PYSTATOR_SCHEDULER=db)
    timer_firing: TimerFiring | None = None
    processor: Processor = field(init=False)
    outbox: OutboxRunner = field(init=False)
    producer: Producer = field(init=False)

    def __post_init__(self) -> None:
        if self.timer_firing is None:
            self.timer_firing = TimerFiring(
                self.engine, self.nudger, max_attempts=self.settings.max_attempts
            )
        if self.timers is None:
            self.timers = TableTimers(
                self.timer_firing, poll_interval=self.settings.timer_poll_seconds
            )
        retry = RetryPolicy(
            base_seconds=self.settings.retry_base_seconds,
            max_seconds=self.settings.retry_max_seconds,
        )
        self.outbox = OutboxRunner(self.engine, self.machines, retry=retry)
        self.processor = Processor(
            self.engine,
            self.machines,
            options=ProcessorOptions(retry=retry),
            timers=self.timers,
            after_commit=[self._after_commit],
        )
        self.producer = Producer(
            engine=self.engine,
            machines=self.machines,
            nudger=self.nudger,
            limits=Limits(max_context_bytes=self.settings.max_context_bytes),
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        machines: MachineRegistry | None = None,
        queue: str | None = None,
    ) -> Runtime:
        """Wire a runtime from settings (machines from ``settings.machines`` / ``app``)."""
        settings = settings or load_settings()
        queue = queue or settings_queue(settings)
        registry = (
            machines if machines is not None else load_registry(settings.machines, settings.app)
        )
        engine = worker_engine(settings.database_url)
        nudger = make_nudger(settings, queue)
        timers, firing = make_timers(
            settings, engine, nudger, queue=queue, app_for=lambda: celery_app(settings, queue)
        )
        return cls(
            settings=settings,
            engine=engine,
            machines=registry,
            nudger=nudger,
            queue=queue,
            timers=timers,
            timer_firing=firing,
        )

    @property
    def scheduler(self) -> TableTimers:
        """The timer scheduler (set in ``__post_init__``)."""
        assert self.timers is not None
        return self.timers

    @property
    def firing(self) -> TimerFiring:
        """Turns due timer rows into events (set in ``__post_init__``)."""
        assert self.timer_firing is not None
        return self.timer_firing

    def _after_commit(self, batch: Batch) -> None:
        for result in batch.results:
            _log_result(result)
        if self.run_actions_inline and batch.action_ids:
            self.outbox.run(batch.outbox_rows())

    def relay_grace(self) -> timedelta:
        """How long a just-submitted due event may wait for its own nudge before the relay acts."""
        return timedelta(seconds=max(2 * self.settings.relay_interval_seconds, 1.0))

    def close(self) -> None:
        """Release database connections and the timer scheduler's client."""
        if self.timers is not None:
            self.timers.close()
        dispose(self.engine)


def settings_queue(settings: Settings) -> str:
    """The Celery queue of this deployment (``PYSTATOR_QUEUE``, default ``pystator``)."""
    return settings.queue or DEFAULT_QUEUE


def _log_result(result: EventResult) -> None:
    event = result.event
    fields: dict[str, Any] = {
        "event_id": event.id,
        "machine": event.machine,
        "entity_id": event.entity_id,
        "trigger": event.trigger,
        "attempt": result.attempt,
        "outcome": result.outcome,
    }
    if result.outcome == APPLIED:
        log.debug("event_applied", target_state=result.target_state, **fields)
    elif result.error is not None:
        log.warning("event_failed", error=result.error.get("message"), **fields)
    else:
        log.info("event_closed", reason=result.reason, **fields)


_lock = threading.Lock()
_default: dict[tuple[int, str | None], Runtime] = {}
_configured: list[Settings] = []


def configure(settings: Settings) -> None:
    """Use ``settings`` (instead of the environment) for runtimes built from now on.

    The ``pystator worker`` command calls this with its command-line overrides before Celery
    starts, so forked pool children inherit it.
    """
    with _lock:
        _configured[:] = [settings]
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
                settings = _with_url(settings, db_url)
            runtime = Runtime.from_settings(settings)
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


def _with_url(settings: Settings, db_url: str) -> Settings:
    from dataclasses import replace

    return replace(settings, database_url=db_url)


__all__ = [
    "Runtime",
    "configure",
    "current_settings",
    "get_runtime",
    "is_memory_broker",
    "set_default_runtime",
]
