"""``pystator worker``, ``pystator submit`` and ``pystator relay``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from dataclasses import replace
from datetime import datetime
from functools import partial
from types import FrameType
from typing import Any

from celery import Celery, signals
from celery.utils.nodenames import default_nodename, host_format
from sqlalchemy.engine import make_url

from pystator.config.logs import configure_logging, get_logger
from pystator.config.settings import DEFAULT_WORKER_DRAIN_TIMEOUT_S, Settings, load_settings
from pystator.fleet.app import (
    DUTIES_STOP_SECONDS,
    WorkerStart,
    make_worker_app,
    start_before_boot,
)
from pystator.fleet.celery_config import is_memory_broker
from pystator.fleet.composition import prepare_database
from pystator.fleet.duties import freeze_startup_heap
from pystator.fleet.embedded import DrainThreads
from pystator.fleet.metrics import process_observer, serve_metrics
from pystator.fleet.producer import EventSpec
from pystator.fleet.relay import Relay
from pystator.fleet.runtime import Runtime, configure, get_runtime
from pystator.fleet.startup import wait_for_database
from pystator.fsm_core.errors import InvalidEventError, SettingsError
from pystator.services.apply_data import ApplyDataRequest, queue_apply_data

#: Seconds a SIGTERM-ed worker waits for in-flight batches before stopping hard, by default
#: (``PYSTATOR_WORKER_DRAIN_TIMEOUT_S``).
DRAIN_TIMEOUT_SECONDS = DEFAULT_WORKER_DRAIN_TIMEOUT_S
#: Exit status when shutdown had to stop hard (second signal or drain timeout).
EXIT_HARD_STOP = 1
POOLS = ("threads", "prefork", "solo")

log = get_logger("pystator.worker")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``worker``, ``submit`` and ``relay`` commands."""
    worker = sub.add_parser("worker", help="run a worker that applies submitted events")
    worker.add_argument(
        "--concurrency",
        "-c",
        type=int,
        default=None,
        help="parallel slots (default: PYSTATOR_WORKER_CONCURRENCY, 2)",
    )
    worker.add_argument("--pool", choices=POOLS, default="threads", help="Celery pool")
    _common(worker)
    worker.add_argument("--no-relay", action="store_true", help="do not run the relay thread")
    worker.add_argument(
        "--source",
        choices=("table", "queue"),
        default="table",
        help="table: worker_events + nudges (default); queue: events in broker messages",
    )
    worker.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics of this worker on this port",
    )
    worker.set_defaults(func=run_worker)

    submit = sub.add_parser("submit", help="submit one event to the fleet")
    submit.add_argument("machine")
    submit.add_argument("entity_id")
    submit.add_argument("trigger")
    submit.add_argument("--context", default=None, help="JSON object merged into the context")
    submit.add_argument("--idempotency-key", default=None)
    submit.add_argument("--fires-at", default=None, help="ISO-8601 time; default now")
    submit.add_argument("--max-attempts", type=int, default=None)
    _common(submit)
    submit.set_defaults(func=run_submit)

    apply = sub.add_parser(
        "apply-data", help="queue a data update (routed by the machine's when rules)"
    )
    apply.add_argument("machine")
    apply.add_argument("entity_id")
    apply.add_argument("data", help="JSON object merged into the entity's context")
    apply.add_argument("--idempotency-key", default=None)
    apply.add_argument("--fires-at", default=None, help="ISO-8601 time; default now")
    apply.add_argument("--max-attempts", type=int, default=None)
    _common(apply)
    apply.set_defaults(func=run_apply_data)

    relay = sub.add_parser("relay", help="re-publish nudges for stranded events; sweep the outbox")
    relay.add_argument("--once", action="store_true", help="one pass, then exit")
    relay.add_argument("--interval", type=float, default=None, help="seconds between passes")
    _common(relay)
    relay.set_defaults(func=run_relay)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--machines", default=None, help="directory or file of machine definitions")
    parser.add_argument("--app", default=None, help="module:factory returning guards and actions")
    parser.add_argument("--queue", default=None, help="Celery queue name (default: pystator)")


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment settings with the command line's overrides."""
    settings = load_settings()
    overrides: dict[str, Any] = {}
    for name in ("machines", "app", "queue"):
        value = getattr(args, name, None)
        if value:
            overrides[name] = value
    return replace(settings, **overrides) if overrides else settings


def _prepare(
    args: argparse.Namespace,
    *,
    level: str = "info",
    concurrency: int | None = None,
    settings: Settings | None = None,
    wait_as: str | None = None,
) -> Settings:
    settings = settings or settings_from(args)
    configure_logging(settings.log_format, level)
    if wait_as is not None:  # a long-running process: wait for the database (fleet.startup)
        wait_for_database(settings, process=wait_as)
    metrics = getattr(args, "metrics_port", None) is not None
    configure(settings, concurrency=concurrency, observers=[process_observer] if metrics else [])
    prepare_database(settings)
    return settings


def _start(
    args: argparse.Namespace,
    *,
    level: str = "info",
    concurrency: int | None = None,
    wait_as: str | None = None,
) -> Runtime:
    _prepare(args, level=level, concurrency=concurrency, wait_as=wait_as)
    return get_runtime()


# --- worker ----------------------------------------------------------------------------------


def run_worker(args: argparse.Namespace) -> int:
    """Start the worker: Celery with a real broker, drain threads with the in-process one."""
    settings = settings_from(args)
    concurrency = max(args.concurrency or settings.worker_concurrency, 1)
    settings = _prepare(
        args, level=args.log_level, concurrency=concurrency, settings=settings, wait_as="worker"
    )
    embedded = is_memory_broker(settings.broker_url)
    if embedded and args.source == "queue":
        raise SettingsError("--source queue needs a real broker (PYSTATOR_BROKER_URL)")
    relay = not args.no_relay
    # Under prefork the main process only runs the duties (its tasks run in the children): it
    # drains the start-up backlog with one thread, on the connections it keeps for them.
    prefork = args.pool == "prefork"
    app = (
        None
        if embedded
        else make_worker_app(
            settings,
            source=args.source,
            relay=relay,
            drain_threads=1 if prefork else concurrency,
        )
    )
    # A worker publishes (nudges, ETA timers) on the app it runs; prefork children build
    # their own runtime from the same settings.
    threads = 0 if prefork and app is not None else concurrency
    observers = [process_observer()] if args.metrics_port is not None else []
    runtime = Runtime.from_settings(settings, app=app, concurrency=threads, observers=observers)
    if args.metrics_port is not None:
        serve_metrics(args.metrics_port, pool=args.pool if app is not None else "threads")
    runtime.serve_as_worker(concurrency=concurrency, pool=args.pool, queue=runtime.queue)
    log.info(
        "worker_starting",
        machines=list(runtime.machines.names()),
        concurrency=concurrency,
        pool=args.pool,
        broker=_safe_url(settings.broker_url),
        queue=runtime.queue,
        embedded=embedded,
        source=args.source,
    )
    if app is None:
        return _run_embedded(runtime, concurrency, relay=relay)
    # The duties (timers, relay, heartbeat) and the start-up drain run before Celery's worker
    # boots (about a second), so the backlog drains meanwhile; its FleetDuties step adopts them.
    # A prefork pool forks: there the step starts them once the worker boots.
    early = None if args.pool == "prefork" else start_before_boot(runtime, app)
    if early is not None:
        _stop_before_boot(early)
    return _run_celery(runtime, app, concurrency, args, early=early)


def _run_embedded(runtime: Runtime, concurrency: int, *, relay: bool) -> int:
    threads = DrainThreads(runtime, concurrency=max(concurrency, 1), with_relay=relay)
    stop = threading.Event()
    signals_seen: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        signals_seen.append(signum)
        if len(signals_seen) > 1:
            log.warning("worker_hard_stop", signal=signum)
            os._exit(EXIT_HARD_STOP)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    freeze_startup_heap()
    threads.start()
    while not stop.wait(1.0):
        pass
    finished = threads.drain(runtime.settings.worker_drain_timeout_s)
    return 0 if finished else EXIT_HARD_STOP


def _run_celery(
    runtime: Runtime,
    app: Celery,
    concurrency: int,
    args: argparse.Namespace,
    *,
    early: WorkerStart | None = None,
) -> int:
    """Run Celery's worker in this process until it stops; its exit code.

    The worker is built as ``celery worker`` builds it once its command line is parsed, without
    that command line: Celery's (click, click-repl, prompt-toolkit) costs 0.4 to 0.8 s of CPU at
    every start, taken from the start-up drain that runs meanwhile. The exit code is the
    worker's own: a consumer that crashed ("Unrecoverable error") must not exit 0, or a
    supervisor that restarts on failure would leave it down.
    """
    # Without ``early`` the duties (timers, relay, heartbeat) start with the worker: a bootstep.
    escalate = partial(_escalate_on_second_signal, timeout=runtime.settings.worker_drain_timeout_s)
    signals.worker_shutting_down.connect(escalate, weak=False)
    try:
        worker = app.Worker(
            hostname=host_format(default_nodename(f"pystator-{os.getpid()}@%h")),
            pool_cls=args.pool,
            concurrency=concurrency,
            queues=[runtime.queue],
            # Celery's own per-task lines only at debug: pystator logs every event that matters
            loglevel=logging.DEBUG if args.log_level == "debug" else logging.WARNING,
            without_gossip=True,
            without_mingle=True,
            without_heartbeat=True,
        )
        worker.start()
    finally:
        signals.worker_shutting_down.disconnect(escalate)
        if early is not None:  # stopped by the step with the worker; not if it never booted
            early.stop(DUTIES_STOP_SECONDS)
    return int(worker.exitcode or 0)


def _stop_before_boot(early: WorkerStart) -> None:
    """Until Celery's worker installs its own handlers, SIGTERM and SIGINT ask for the warm
    shutdown Celery's handler would (its flag, which the worker honours as soon as it runs;
    the start-up drain stops after its current transactions); a second one stops hard."""
    from celery.worker import state as celery_state  # after the drain started: Celery's boot

    seen: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        seen.append(signum)
        if len(seen) > 1:
            os._exit(EXIT_HARD_STOP)
        early.request_stop()
        celery_state.should_stop = 0  # EX_OK: what Celery's warm shutdown handler sets

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _escalate_on_second_signal(
    how: str = "Warm", *, timeout: float = DRAIN_TIMEOUT_SECONDS, **_kwargs: Any
) -> None:
    """After a warm shutdown starts: a second SIGTERM, or the drain timeout, stops hard.

    (Celery itself only escalates on a second SIGINT.) Runs in the main process, from the
    signal handler, so installing a handler here is allowed.
    """
    if how != "Warm":
        return

    def hard_stop(*_args: Any) -> None:
        from celery.worker import state as celery_state  # loaded by the running worker already

        log.warning("worker_hard_stop", reason="second signal or drain timeout")
        celery_state.should_terminate = EXIT_HARD_STOP  # Celery's cold shutdown: pool terminated

    signal.signal(signal.SIGTERM, hard_stop)
    timer = threading.Timer(timeout, hard_stop)
    timer.daemon = True
    timer.start()
    log.info("worker_draining", timeout_seconds=timeout)


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy-style URL (e.g. memory://): show the scheme only
        return url.split("://", 1)[0] + "://"


# --- submit ----------------------------------------------------------------------------------


def run_submit(args: argparse.Namespace) -> int:
    """Submit one event and print its id."""
    runtime = _start(args, level="warning")
    context = _json_object(args.context) if args.context else None
    fires_at = _parse_time(args.fires_at) if args.fires_at else None
    spec = EventSpec(
        machine=args.machine,
        entity_id=args.entity_id,
        trigger=args.trigger,
        context=context,
        fires_at=fires_at,
        idempotency_key=args.idempotency_key,
        max_attempts=args.max_attempts or runtime.settings.max_attempts,
    )
    receipt = runtime.producer.submit(spec)
    # Publish the nudge now, while the process is whole (not from an exit hook).
    runtime.nudger.flush()
    suffix = " (duplicate)" if receipt.duplicate else ""
    print(f"{receipt.event_id}{suffix}")
    return 0


def run_apply_data(args: argparse.Namespace) -> int:
    """Queue one data update for an existing entity and print its event id."""
    runtime = _start(args, level="warning")
    request = ApplyDataRequest(
        machine=args.machine,
        entity_id=args.entity_id,
        data=_json_object(args.data, what="DATA"),
        idempotency_key=args.idempotency_key,
        max_attempts=args.max_attempts or runtime.settings.max_attempts,
        fires_at=_parse_time(args.fires_at) if args.fires_at else None,
    )
    receipt = queue_apply_data(runtime.engine, runtime.producer, request)
    runtime.nudger.flush()  # publish the nudge now, while the process is whole
    suffix = " (duplicate)" if receipt.duplicate else ""
    print(f"{receipt.event_id}{suffix}")
    return 0


def _json_object(text: str, what: str = "--context") -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidEventError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidEventError(f"{what} must be a JSON object")
    return value


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidEventError(f"--fires-at {text!r}: expected an ISO-8601 time") from exc


# --- relay -----------------------------------------------------------------------------------


def run_relay(args: argparse.Namespace) -> int:
    """Run the relay loop (or one pass with ``--once``)."""
    runtime = _start(args, concurrency=1, wait_as="relay")
    relay = Relay(runtime, interval=args.interval)
    if args.once:
        tick = relay.tick()
        print(json.dumps({"nudged": tick.nudged, "actions_run": tick.actions_run}))
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    signal.signal(signal.SIGINT, lambda *_a: stop.set())
    log.info("relay_started", interval_seconds=relay.interval)
    relay.run(stop)
    return 0
