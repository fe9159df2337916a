"""The worker's Celery app: ``celery -A pystator.fleet.app worker`` (or ``pystator worker``).

:func:`make_worker_app` takes the fleet's Celery configuration
(:mod:`pystator.fleet.celery_config`), registers the tasks of :mod:`pystator.fleet.tasks` bound
to the process's runtime (:func:`~pystator.fleet.runtime.get_runtime`, rebuilt in every prefork
child) and adds the :class:`FleetDuties` bootstep, so a worker started by Celery itself runs the
same duties as ``pystator worker``: timers, relay, heartbeat. The module attribute ``app`` (what
``celery -A`` looks up) is built from the environment on first access, not at import.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, replace
from typing import Any

from celery import Celery, bootsteps, signals

from pystator.config.logs import get_logger
from pystator.config.settings import Settings
from pystator.fleet.celery_config import broker_warnings, new_app
from pystator.fleet.duties import Duties, freeze_startup_heap
from pystator.fleet.runtime import Runtime, configure, current_settings, get_runtime
from pystator.fleet.startup import BacklogDrain, clear_stale_nudges, wait_for_database
from pystator.fleet.tasks import RuntimeProvider, register

#: ``app.conf`` key: run the relay in this worker (``pystator worker --no-relay`` sets False).
RELAY_CONF = "pystator_relay"
#: ``app.conf`` key: threads that drain the backlog at start-up, before the first message.
STARTUP_DRAIN_CONF = "pystator_startup_drain_threads"
#: Connections of a prefork child: its one task and its heartbeat.
CHILD_POOL_SIZE = 2
#: Seconds a stopping worker waits for its duties' threads.
DUTIES_STOP_SECONDS = 10.0

log = get_logger("pystator.worker.app")


@dataclass
class WorkerStart:
    """What a starting worker runs besides its consumer: the duties and the backlog drain."""

    duties: Duties
    drain: BacklogDrain | None = None

    def request_stop(self) -> None:
        """Ask the drain to stop, without waiting (from a signal handler)."""
        if self.drain is not None:
            self.drain.request_stop()

    def stop(self, timeout: float = DUTIES_STOP_SECONDS) -> None:
        """Stop the drain (after its current transactions), then the duties. Idempotent."""
        if self.drain is not None:
            self.drain.stop(timeout)
        self.duties.shutdown(timeout)


def start_worker(runtime: Runtime, app: Celery) -> WorkerStart:
    """Start what a worker of ``app`` runs besides consuming (call once the database answers):
    the duties (its liveness lock and heartbeat first, then timers, relay, pruner) and, for a
    table worker, the start-up drain, after purging a nudge queue a backlog left at its bound
    (:mod:`pystator.fleet.startup`)."""
    conf = app.conf
    runtime.status.kind = "celery"
    threads = int(conf.get(STARTUP_DRAIN_CONF, 0))
    drain = None
    if threads > 0:  # a table worker
        drain = BacklogDrain(runtime.processor, threads=threads, order=runtime.status.worker_id)
    duties = Duties(
        runtime,
        relay=bool(conf.get(RELAY_CONF, True)),
        relay_leaves=drain.leaves_through if drain is not None else lambda: None,
    )
    duties.start()
    if drain is not None:  # purge stale nudges, drain the backlog meanwhile
        try:
            clear_stale_nudges(runtime, app)
        except BaseException:
            duties.shutdown(DUTIES_STOP_SECONDS)
            raise
        drain.start()
    return WorkerStart(duties, drain)


#: Starts made before their app's worker booted (:func:`start_before_boot`), by app.
_early: weakref.WeakKeyDictionary[Celery, WorkerStart] = weakref.WeakKeyDictionary()


def start_before_boot(runtime: Runtime, app: Celery) -> WorkerStart:
    """:func:`start_worker` now, before Celery's worker of ``app`` boots (its consumer, pool and
    bootsteps): the backlog drain runs while Celery boots. The :class:`FleetDuties` step of that
    worker adopts it (and stops it with the worker) instead of starting its own. For a threads
    or solo pool only: a prefork pool must not fork a process whose threads already work."""
    started = start_worker(runtime, app)
    _early[app] = started
    return started


class FleetDuties(bootsteps.StartStopStep):  # type: ignore[misc]
    """Runs the fleet's duties (timers, relay, heartbeat) in the worker's main process."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.started: WorkerStart | None = None

    def start(self, parent: Any) -> None:
        """Once the database answers, start the duties and the backlog drain (Celery starts
        its consumer, the last step, after this one), unless ``pystator worker`` started them
        before the worker booted."""
        app = parent.app
        self.started = _early.pop(app, None)
        if self.started is None:
            wait_for_database(current_settings(), process="worker")
            self.started = start_worker(get_runtime(), app)

    def stop(self, parent: Any) -> None:
        """Stop them with the worker: the drain between two transactions, then the duties."""
        if self.started is not None:
            self.started.stop(DUTIES_STOP_SECONDS)


def make_worker_app(
    settings: Settings,
    *,
    runtime: RuntimeProvider = get_runtime,
    source: str = "table",
    relay: bool = True,
    drain_threads: int | None = None,
) -> Celery:
    """A Celery app that runs the fleet's tasks for ``source`` (``table`` or ``queue``) and its
    duties (the relay only if ``relay``); a ``table`` worker first drains the backlog in
    ``drain_threads`` threads (default: ``PYSTATOR_WORKER_CONCURRENCY``)."""
    celery = new_app(settings)
    register(celery, runtime, source=source)
    celery.conf[RELAY_CONF] = relay
    threads = settings.worker_concurrency if drain_threads is None else drain_threads
    celery.conf[STARTUP_DRAIN_CONF] = threads if source == "table" else 0
    celery.steps["worker"].add(FleetDuties)
    return celery


@functools.cache
def default_app() -> Celery:
    """The app ``celery -A pystator.fleet.app`` runs: settings from the environment."""
    return make_worker_app(current_settings())


def __getattr__(name: str) -> Celery:
    if name in ("app", "celery"):
        return default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- signals: start-up warnings, work in flight, prefork children's own heartbeat ------------


def _warn_on_start(sender: Any = None, **_kwargs: Any) -> None:
    app = getattr(sender, "app", None)
    if isinstance(app, Celery):
        for message in broker_warnings(app):
            log.warning("unsafe_broker_setting", detail=message)
    freeze_startup_heap()


def _task_started(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    if _is_fleet_task(task):
        get_runtime().status.begin(task_id)


def _task_finished(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    if _is_fleet_task(task):
        get_runtime().status.end(task_id)


def _is_fleet_task(task: Any) -> bool:
    return str(getattr(task, "name", "")).startswith("pystator.")


_child_duties: list[Duties] = []


def _child_started(**_kwargs: Any) -> None:
    """A prefork child: one task at a time, and a heartbeat of its own (its work in flight)."""
    configure(replace(current_settings(), db_pool_size=CHILD_POOL_SIZE), concurrency=1)
    runtime = get_runtime()
    runtime.status.kind = "child"
    duties = Duties(runtime, relay=False, timers=False)
    duties.start()
    _child_duties[:] = [duties]
    freeze_startup_heap()


def _child_stopping(**_kwargs: Any) -> None:
    for duties in _child_duties:
        duties.shutdown(DUTIES_STOP_SECONDS)


signals.worker_ready.connect(_warn_on_start, weak=False)
signals.task_prerun.connect(_task_started, weak=False)
signals.task_postrun.connect(_task_finished, weak=False)
signals.worker_process_init.connect(_child_started, weak=False)
signals.worker_process_shutdown.connect(_child_stopping, weak=False)


__all__ = [
    "RELAY_CONF",
    "STARTUP_DRAIN_CONF",
    "FleetDuties",
    "WorkerStart",
    "default_app",
    "make_worker_app",
    "start_before_boot",
    "start_worker",
]
