"""Shared pieces of the worker tests: a small machine, its guards/actions, and wiring helpers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pystator import ActionRegistry, GuardRegistry
from pystator.config.settings import Settings
from pystator.fleet.nudge import NullNudger
from pystator.fleet.outbox import OutboxRunner
from pystator.fleet.processor import Processor, ProcessorOptions
from pystator.fleet.producer import Producer
from pystator.fleet.runtime import Runtime
from pystator.fsm_core.backoff import Backoff
from pystator.registry.machines import MachineRegistry
from pystator.stores.sql import admin_queries, entity_queries, history_queries
from pystator.stores.sql.connections import fleet_engine
from pystator.stores.sql.rows import EventRow
from pystator.stores.sql.schema import transition_history, worker_events

MACHINE = "wtest"

# new --open--> open --bump (guard fragile)--> open (self) --close--> closed (terminal)
CONFIG: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": MACHINE, "strict_mode": True},
    "states": [
        {"name": "new", "type": "initial"},
        {"name": "open", "type": "stable"},
        {"name": "closed", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "open", "source": "new", "dest": "open", "actions": ["record"]},
        {
            "trigger": "bump",
            "source": "open",
            "dest": "open",
            "guards": ["fragile"],
            "actions": ["record"],
        },
        {"trigger": "close", "source": "open", "dest": "closed"},
    ],
}


class Poison(RuntimeError):
    """Raised by the ``fragile`` guard for events carrying ``poison``."""


class ThreadKiller(BaseException):
    """Raised by the ``fragile`` guard for events carrying ``kill_thread``: not an Exception,
    so it ends the thread that applies the event (a bug that kills a worker's loop)."""


#: Seconds a ``hang`` action blocks (longer than any test waits).
HANG_SECONDS = 600.0


@dataclass
class Hooks:
    """Guards and actions whose behaviour a test steers, and what they saw."""

    calls: list[Mapping[str, Any]] = field(default_factory=list)
    flaky_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_action: Callable[[Mapping[str, Any]], None] | None = None

    def fragile(self, ctx: Mapping[str, Any]) -> bool:
        if ctx.get("kill_thread"):
            raise ThreadKiller("the guard killed its thread")
        if ctx.get("poison"):
            raise Poison(f"poison n={ctx.get('n')}")
        with self.lock:
            if ctx.get("flaky") and self.flaky_failures > 0:
                self.flaky_failures -= 1
                raise Poison("flaky")
        return not ctx.get("reject")

    def record(self, ctx: Mapping[str, Any]) -> None:
        if ctx.get("hang"):
            threading.Event().wait(HANG_SECONDS)  # an action stuck on a dead remote service
        if self.on_action is not None:
            self.on_action(ctx)
        with self.lock:
            self.calls.append(dict(ctx))

    def registries(self) -> tuple[GuardRegistry, ActionRegistry]:
        guards = GuardRegistry()
        guards.register("fragile", self.fragile)
        actions = ActionRegistry()
        actions.register("record", self.record)
        return guards, actions


def make_machines(hooks: Hooks) -> MachineRegistry:
    from pystator import StateMachine

    machine = StateMachine.from_dict(CONFIG)
    registry = MachineRegistry([machine])
    registry.bind(*hooks.registries())
    return registry


class FakeClock:
    """A clock tests move forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    """A producer and a processor on one database, sharing a fake clock."""

    url: str
    hooks: Hooks
    clock: FakeClock
    engine: sa.Engine
    machines: MachineRegistry
    producer: Producer
    processor: Processor
    outbox: OutboxRunner

    def events(self) -> list[EventRow]:
        with self.engine.connect() as conn:
            rows = admin_queries.list_events(conn, admin_queries.EventFilter(), limit=100_000)
        return sorted(rows, key=lambda e: e.id)

    def event(self, event_id: int) -> EventRow:
        with self.engine.connect() as conn:
            row = admin_queries.get_event(conn, event_id)
        assert row is not None
        return row

    def record(self, entity_id: str) -> Any:
        with self.engine.connect() as conn:
            return entity_queries.load_record(conn, MACHINE, entity_id)

    def history(self, entity_id: str) -> list[Any]:
        with self.engine.connect() as conn:
            return history_queries.load_history(conn, MACHINE, entity_id)

    def count(self, table: sa.Table, **where: Any) -> int:
        query = sa.select(sa.func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def submit(self, entity_id: str, trigger: str, **context: Any) -> int:
        from pystator.fleet.producer import EventSpec

        spec = EventSpec(machine=MACHINE, entity_id=entity_id, trigger=trigger, context=context)
        return self.producer.submit(spec).event_id


def make_rig(url: str, *, retry_base: float = 1.0, max_attempts_actions: int = 3) -> Rig:
    hooks = Hooks()
    clock = FakeClock()
    engine = fleet_engine(url)
    machines = make_machines(hooks)
    retry = Backoff(base_seconds=retry_base, max_seconds=60)
    outbox = OutboxRunner(
        engine, machines, retry=retry, max_attempts=max_attempts_actions, clock=clock
    )
    processor = Processor(
        engine,
        machines,
        options=ProcessorOptions(retry=retry),
        after_commit=[lambda batch: outbox.run_ids(batch.action_ids)],
        clock=clock,
        rand=lambda: 1.0,
    )
    producer = Producer(engine=engine, machines=machines, nudger=NullNudger(), clock=clock)
    return Rig(url, hooks, clock, engine, machines, producer, processor, outbox)


def make_runtime(url: str, hooks: Hooks, **settings: Any) -> Runtime:
    """A real-clock runtime (what a worker process builds) over ``url``."""
    return Runtime(
        settings=Settings(database_url=url, **settings),
        engine=fleet_engine(url),
        machines=make_machines(hooks),
        nudger=NullNudger(),
    )


def history_rows(engine: sa.Engine) -> Iterator[Any]:
    with engine.connect() as conn:
        yield from conn.execute(sa.select(transition_history)).mappings()


def statuses(engine: sa.Engine) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(worker_events.c.id, worker_events.c.status)).all()
    return {int(r[0]): str(r[1]) for r in rows}
