"""``pystator demo`` (what ``make demo`` runs): the embedded fleet, end to end, in seconds.

A SQLite file in a temporary directory, the in-process broker and a few drain threads; a few
thousand events for hundreds of orders of ``examples/fleet_demo.yaml``, with a flaky guard
(retries), poison events (dead letters) and late cancels (business rejections).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pystator.config.logs import configure_logging
from pystator.config.settings import Settings
from pystator.fleet.composition import pool_size, prepare_database, settings_engine
from pystator.fleet.embedded import DrainThreads
from pystator.fleet.nudge import LocalNudger
from pystator.fleet.runtime import Runtime
from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.errors import ConfigurationError
from pystator.fsm_core.guards import GuardRegistry
from pystator.registry.machines import MachineRegistry, load_machine
from pystator.services import admin, lookups

DEFAULT_ENTITIES = 400
DEFAULT_THREADS = 2
FILLS_PER_ORDER = 6
SUBMIT_BATCH = 250
#: Share of guard calls that fail like a flaky exchange (retried with backoff).
FLAKY_RATE = 0.03
POISON_ORDERS = 3
CANCEL_SHARE = 10  # every 10th order also gets a cancel after it filled: a rejection
DEMO_TIMEOUT_SECONDS = 50.0
PROGRESS_WIDTH = 40
DEMO_MACHINE = Path(__file__).resolve().parents[2] / "examples" / "fleet_demo.yaml"
DEMO_DATABASE = "pystator-demo.db"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command."""
    demo = sub.add_parser("demo", help="run the embedded worker fleet on a few thousand events")
    demo.add_argument("--entities", type=int, default=DEFAULT_ENTITIES)
    demo.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    demo.add_argument("--machine", default=str(DEMO_MACHINE), help="the fleet_demo.yaml to use")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--db",
        default=DEMO_DATABASE,
        help=f"the SQLite file the demo (re)creates and leaves behind (default {DEMO_DATABASE})",
    )
    demo.set_defaults(func=run_demo)


@dataclass
class DemoApp:
    """The demo's guards and actions."""

    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    actions: Counter[str] = field(default_factory=Counter)

    def exchange_ok(self, ctx: Mapping[str, Any]) -> bool:
        if ctx.get("poison"):
            raise RuntimeError("exchange rejected the message format (poison)")
        with self.lock:
            flaky = self.rng.random() < FLAKY_RATE
        if flaky:
            raise TimeoutError("exchange timed out")
        return True

    def notify(self, _ctx: Mapping[str, Any]) -> None:
        with self.lock:
            self.actions["notify"] += 1

    def record_fill(self, _ctx: Mapping[str, Any]) -> None:
        with self.lock:
            self.actions["record_fill"] += 1


def _events(entities: int) -> list[dict[str, Any]]:
    """Per order: ack, fills, complete; some poison fills and some late cancels."""
    events: list[dict[str, Any]] = []
    for i in range(entities):
        order = f"order-{i:04d}"
        events.append({"entity_id": order, "trigger": "exchange_ack"})
        for n in range(FILLS_PER_ORDER):
            poison = i < POISON_ORDERS and n == 2
            context = {"fill": n + 1, **({"poison": True} if poison else {})}
            events.append({"entity_id": order, "trigger": "fill", "context": context})
        events.append({"entity_id": order, "trigger": "complete"})
        if i % CANCEL_SHARE == 0:
            events.append({"entity_id": order, "trigger": "cancel"})
    return events


def _bar(label: str, done: int, total: int) -> None:
    filled = PROGRESS_WIDTH * done // max(total, 1)
    sys.stderr.write(
        f"\r{label:<10} [{'#' * filled}{'.' * (PROGRESS_WIDTH - filled)}] {done}/{total}"
    )
    sys.stderr.flush()


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo and print what happened."""
    machine_path = Path(args.machine)
    if not machine_path.is_file():
        raise ConfigurationError(f"demo machine {machine_path} not found (run from the repo root)")
    db_path = Path(args.db).resolve()
    for stale in (db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)  # each demo starts afresh; the file stays for exploring
    return _run(args, machine_path, db_path)


def _run(args: argparse.Namespace, machine_path: Path, db_path: Path) -> int:
    configure_logging("console", "error")  # the demo prints its own summary
    url = f"sqlite:///{db_path}"
    app = DemoApp(random.Random(args.seed))
    guards, actions = GuardRegistry(), ActionRegistry()
    guards.register("exchange_ok", app.exchange_ok)
    actions.register("notify", app.notify)
    actions.register("record_fill", app.record_fill)
    machines = MachineRegistry([load_machine(machine_path)])
    machines.bind(guards, actions)
    settings = Settings(
        database_url=url,
        retry_base_seconds=0.02,
        retry_max_seconds=0.2,
        worker_poll_interval_ms=20,
    )
    prepare_database(settings)
    runtime = Runtime(
        settings=settings,
        engine=settings_engine(settings, pool_size(settings, args.threads)),
        machines=machines,
        nudger=LocalNudger(),
    )
    threads = DrainThreads(runtime, concurrency=args.threads)
    machine_name = next(iter(machines)).name
    events = [{"machine": machine_name, "max_attempts": 4, **e} for e in _events(args.entities)]
    print(
        f"pystator demo: {len(events)} events for {args.entities} orders, "
        f"{args.threads} worker threads, SQLite at {db_path}",
        file=sys.stderr,
    )
    started = time.perf_counter()
    threads.start()
    try:
        for start in range(0, len(events), SUBMIT_BATCH):
            runtime.producer.submit_many(events[start : start + SUBMIT_BATCH])
            _bar("submitted", min(start + SUBMIT_BATCH, len(events)), len(events))
        sys.stderr.write("\n")
        submitted = time.perf_counter() - started
        _wait(runtime, len(events), started)
        elapsed = time.perf_counter() - started
    finally:
        threads.stop(timeout=10)
    _report(runtime, app, args.entities, len(events), (submitted, elapsed), db_path, machine_path)
    runtime.close()
    return 0


def _wait(runtime: Runtime, total: int, started: float) -> None:
    while True:
        stats = admin.stats(runtime.engine)
        pending = stats["events"]["pending"]
        _bar("applied", total - pending, total)
        if pending == 0 or time.perf_counter() - started > DEMO_TIMEOUT_SECONDS:
            sys.stderr.write("\n")
            return
        time.sleep(0.1)


def _report(
    runtime: Runtime,
    app: DemoApp,
    entities: int,
    total: int,
    timing: tuple[float, float],
    db_path: Path,
    machine_path: Path,
) -> None:
    submitted, elapsed = timing
    machine = next(iter(runtime.machines)).name
    keys = [(machine, f"order-{i:04d}") for i in range(entities)]
    stats = admin.stats(runtime.engine)
    records = lookups.entity_records(runtime.engine, keys)
    states = Counter(r.state for r in records.values())
    events = stats["events"]
    print(f"submitted  {total} events in {submitted:.2f}s ({total / submitted:,.0f}/s)")
    print(f"drained    all events in {elapsed:.2f}s ({total / elapsed:,.0f} events/s end to end)")
    print("final states  " + "  ".join(f"{s}={n}" for s, n in sorted(states.items())))
    print(
        f"events     completed={events['completed']} rejected={events['rejected']} "
        f"dead={events['dead']} pending={events['pending']}"
    )
    print(f"retries    {stats['retried']} events needed more than one attempt")
    print(f"dead letters {events['dead']} (poison events; later events of those orders went on)")
    print(f"actions    {dict(sorted(app.actions.items()))}")
    url = f"sqlite:///{db_path}"
    print(f"\nexplore the demo's fleet (its database stays in {db_path}):")
    print(f"  export PYSTATOR_DATABASE_URL={url}")
    print("  pystator events list --status dead      # the poison events, with their errors")
    print("  pystator events stats                   # counts, retries, idempotency hits")
    print(f"  pystator entities show {machine} order-0000")
    print("\nor in the browser (the dashboard; no login on loopback while auth is off):")
    print(f"  PYSTATOR_DATABASE_URL={url} PYSTATOR_MACHINES={machine_path} pystator api")
    print("  open http://127.0.0.1:8000/ui      (from a checkout: make dashboard does both)")
