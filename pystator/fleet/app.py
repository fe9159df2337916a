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
from dataclasses import replace
from typing import Any

from celery import Celery, bootsteps, signals

from pystator.config.logs import get_logger
from pystator.config.settings import Settings
from pystator.fleet.celery_config import broker_warnings, new_app
from pystator.fleet.duties import Duties, freeze_startup_heap
from pystator.fleet.runtime import configure, current_settings, get_runtime
from pystator.fleet.startup import clear_stale_nudges, start_backlog_drain, wait_for_database
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


class FleetDuties(bootsteps.StartStopStep):  # type: ignore[misc]
    """Runs the fleet's duties (timers, relay, heartbeat) in the worker's main process."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.duties: Duties | None = None

    def start(self, parent: Any) -> None:
        """Once the database answers, start the duties and the backlog drain (Celery starts
        its consumer, the last step, after this one)."""
        conf = parent.app.conf
        wait_for_database(current_settings(), process="worker")
        runtime = get_runtime()
        runtime.status.kind = "celery"
        self.duties = Duties(runtime, relay=bool(conf.get(RELAY_CONF, True)))
        self.duties.start()
        threads = int(conf.get(STARTUP_DRAIN_CONF, 0))
        if threads > 0:  # a table worker: purge stale nudges, drain the backlog meanwhile
            clear_stale_nudges(runtime, parent.app)
            start_backlog_drain(runtime.processor, threads=threads)

    def stop(self, parent: Any) -> None:
        """Stop them with the worker."""
        if self.duties is not None:
            self.duties.shutdown(DUTIES_STOP_SECONDS)


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


__all__ = ["RELAY_CONF", "STARTUP_DRAIN_CONF", "FleetDuties", "default_app", "make_worker_app"]
