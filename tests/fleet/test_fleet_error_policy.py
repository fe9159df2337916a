"""``error_policy`` in the worker fleet: a failing guard or action, retried as the policy says,
then (under ``persist``) the entity moves to the fallback state in its own transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import ActionRegistry, GuardRegistry, StateMachine
from pystator.fleet.outbox import OutboxRunner
from pystator.fleet.processor import FAILED_ACTION_TRIGGER, Processor, ProcessorOptions
from pystator.fleet.producer import EventSpec, Producer
from pystator.fsm_core.backoff import Backoff
from pystator.registry.machines import MachineRegistry
from pystator.stores.sql import entity_queries, history_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from tests.support.worker import FakeClock

pytestmark = pytest.mark.integration

MACHINE = "printer"


def printer(mode: str) -> StateMachine:
    machine = StateMachine.from_dict(
        {
            "meta": {"machine_name": MACHINE, "orchestrator_default_fallback": mode},
            "error_policy": {"default_fallback": "jammed", "retry_attempts": 1},
            "states": [
                {"name": "ready", "type": "initial"},
                {"name": "printing"},
                {"name": "jammed", "type": "error", "on_enter": [{"increment": "jams"}]},
            ],
            "transitions": [
                {"trigger": "print", "source": "ready", "dest": "printing", "guards": ["paper_ok"]},
                {"trigger": "spool", "source": "printing", "dest": "printing", "actions": ["spin"]},
            ],
        }
    )
    guards, actions = GuardRegistry(), ActionRegistry()

    def paper_ok(ctx: dict[str, Any]) -> bool:
        if ctx.get("torn"):
            raise RuntimeError("paper sensor unreadable")
        return True

    def spin(_ctx: dict[str, Any]) -> None:
        raise RuntimeError("motor stalled")

    guards.register("paper_ok", paper_ok)
    actions.register("spin", spin)
    machine.bind_guards(guards)
    machine.bind_actions(actions)
    return machine


class Fleet:
    def __init__(self, url: str, mode: str) -> None:
        self.clock = FakeClock()
        self.engine = fleet_engine(url)
        machines = MachineRegistry([printer(mode)])
        retry = Backoff(base_seconds=1, max_seconds=1, jitter=False)
        self.outbox = OutboxRunner(
            self.engine, machines, retry=retry, max_attempts=2, timeout=None, clock=self.clock
        )
        self.processor = Processor(
            self.engine,
            machines,
            options=ProcessorOptions(retry=retry),
            after_commit=[lambda batch: self.outbox.run(batch.outbox_rows())],
            clock=self.clock,
        )
        self.outbox.on_dead = self.processor.after_dead_action
        self.producer = Producer(engine=self.engine, machines=machines, clock=self.clock)

    def submit(self, trigger: str, **context: Any) -> int:
        spec = EventSpec(machine=MACHINE, entity_id="p1", trigger=trigger, context=context)
        return self.producer.submit(spec)

    def record(self) -> Any:
        with self.engine.connect() as conn:
            return entity_queries.load_record(conn, MACHINE, "p1")

    def history(self) -> list[Any]:
        with self.engine.connect() as conn:
            return history_queries.load_history(conn, MACHINE, "p1")


@pytest.fixture
def fleet(pg_migrated_url: str, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    fleet = Fleet(pg_migrated_url, getattr(request, "param", "persist"))
    yield fleet
    dispose(fleet.engine)


def test_a_guard_failing_past_its_retries_moves_the_entity_to_the_fallback(fleet: Fleet) -> None:
    event = fleet.submit("print", torn=True)
    fleet.processor.drain()
    assert fleet.record() is None  # attempt 1 failed: retried (retry_attempts: 1)
    fleet.clock.advance(2)
    fleet.processor.drain()  # attempt 2 failed: the policy persists it into `jammed`
    record = fleet.record()
    assert (record.state, record.context["jams"]) == ("jammed", 1)
    (entry,) = fleet.history()
    assert (entry.target_state, entry.event_id) == ("jammed", event)


def test_an_action_failing_its_last_attempt_moves_the_entity_to_the_fallback(
    fleet: Fleet,
) -> None:
    fleet.submit("print")
    fleet.submit("spool")
    fleet.processor.drain()  # applied; `spin` failed once (run right after commit)
    assert fleet.record().state == "printing"
    fleet.clock.advance(fleet.outbox.lease.total_seconds() + 1)
    fleet.outbox.sweep()  # its last attempt: dead, and the policy moves the entity
    record = fleet.record()
    assert (record.state, record.context["jams"]) == ("jammed", 1)
    last = fleet.history()[-1]
    assert last.trigger == f"{FAILED_ACTION_TRIGGER}:spin" and last.target_state == "jammed"


@pytest.mark.parametrize("fleet", ["off"], indirect=True)
def test_without_persist_failures_dead_letter_as_usual(fleet: Fleet) -> None:
    fleet.submit("print", torn=True)
    for _ in range(6):
        fleet.processor.drain()
        fleet.clock.advance(2)
    assert fleet.record() is None
    (event,) = [e for e in _events(fleet) if e["trigger"] == "print"]
    assert event["status"] == "dead"


def _events(fleet: Fleet) -> list[dict[str, Any]]:
    with fleet.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text("SELECT * FROM worker_events")).mappings()]
