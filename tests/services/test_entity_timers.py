"""The synchronous entity operations keep timers durable, on PostgreSQL and SQLite: an event's
state row, history row and timer rows commit together (a failing timer write leaves none of
them), the fleet fires what they armed, and a create arms the initial state's timers and runs its
``on_enter`` actions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.fleet.processor import Processor
from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.clock import utc_now
from pystator.registry.machines import MachineRegistry
from pystator.schedulers.fleet_timers import DbTimerSink, TimerFiring
from pystator.services import entities
from pystator.stores.sql import entity_queries, history_queries, timer_queries
from pystator.stores.sql.schema import worker_timers
from tests.support.worker import FakeClock

pytestmark = pytest.mark.integration

MACHINE = "synctimers"
# created (a 1h after: back to itself via `nudge`, on_enter `greet`) --go--> waiting;
# waiting --expire (after 1h)--> created
CONFIG: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": MACHINE},
    "states": [
        {"name": "created", "type": "initial", "on_enter": ["greet"]},
        {"name": "waiting", "type": "stable"},
        {"name": "done", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "go", "source": "created", "dest": "waiting"},
        {"trigger": "nudge", "source": "created", "dest": "done", "after": "1h"},
        {"trigger": "expire", "source": "waiting", "dest": "created", "after": "1h"},
    ],
}


class Boom(RuntimeError):
    """The injected failure between the state write and the timer write."""


@pytest.fixture
def greeted() -> list[str]:
    return []


@pytest.fixture
def machine(greeted: list[str]) -> StateMachine:
    machine = StateMachine.from_dict(CONFIG)
    actions = ActionRegistry()
    actions.register("greet", lambda context: greeted.append(str(context["_entity_id"])))
    machine.bind_actions(actions)
    return machine


def _timers(engine: sa.Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                worker_timers.c.trigger, worker_timers.c.timer_state, worker_timers.c.timer_entry
            )
        ).all()
    return sorted((str(r[0]), str(r[1]), int(r[2])) for r in rows)


def _stored(engine: sa.Engine, entity_id: str) -> tuple[str, int, int]:
    with engine.connect() as conn:
        record = entity_queries.load_record(conn, MACHINE, entity_id)
        history = history_queries.load_history(conn, MACHINE, entity_id)
    assert record is not None
    return record.state, record.version, len(history)


def test_create_arms_the_initial_states_timers_and_runs_its_enter_actions(
    engine: sa.Engine, machine: StateMachine, greeted: list[str]
) -> None:
    record, results = entities.create_reporting(engine, machine, "c1")
    assert (record.state, record.version) == ("created", 1)
    assert _timers(engine) == [("nudge", "created", 1)]
    assert [(r["name"], r["status"]) for r in results] == [("greet", "ok")], results
    assert greeted == ["c1"]


def test_a_failing_timer_write_leaves_no_state_change(
    engine: sa.Engine, machine: StateMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    entities.create(engine, machine, "e1")

    def boom(*args: Any, **kwargs: Any) -> None:
        raise Boom("timer insert failed")

    monkeypatch.setattr(timer_queries, "arm", boom)
    with pytest.raises(Boom):
        entities.send_event(engine, machine, "e1", "go")
    assert _stored(engine, "e1") == ("created", 1, 1)  # neither the state nor its history row
    assert _timers(engine) == [("nudge", "created", 1)]  # the old entry's timer not cancelled

    monkeypatch.undo()
    outcome = entities.send_event(engine, machine, "e1", "go")
    assert (outcome.success, outcome.target_state, outcome.version) == (True, "waiting", 2)
    assert _stored(engine, "e1") == ("waiting", 2, 2)
    assert _timers(engine) == [("expire", "waiting", 2)]  # armed and cancelled with the state


def test_the_fleet_fires_the_timer_a_synchronous_event_armed(
    engine: sa.Engine, machine: StateMachine
) -> None:
    entities.create(engine, machine, "f1")
    assert entities.send_event(engine, machine, "f1", "go").success
    clock = FakeClock()
    clock.now = utc_now()
    firing = TimerFiring(engine, clock=clock)
    sink = DbTimerSink(firing)
    processor = Processor(engine, MachineRegistry([machine]), timers=sink, clock=clock)
    assert sink.poll_once() == 0  # not due yet

    clock.advance(timedelta(hours=1, minutes=1).total_seconds())
    assert sink.poll_once() == 1
    processor.drain()
    assert _stored(engine, "f1")[0] == "created"
    # entering `created` again armed its own timer for the new entry
    assert _timers(engine) == [("nudge", "created", 3)]
