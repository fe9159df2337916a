"""A create enters the initial configuration the way a transition enters it, on PostgreSQL and
SQLite: ``on_enter`` entries whose ``when:`` holds for the create context run, the others are
skipped, effects reach the stored context in the create's transaction, and the actions are
reported in ``action_results``. Entering the same state by a transition — the synchronous
Orchestrator path and the worker fleet's processor — gives the same actions and context. A
``when:`` that cannot be evaluated, or an action nobody registered, refuses the create with
nothing stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import StateMachine
from pystator.fleet.nudge import NullNudger
from pystator.fleet.processor import Processor
from pystator.fleet.producer import EventSpec, Producer
from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.clock import utc_now
from pystator.fsm_core.errors import ActionNotFoundError, ConflictError
from pystator.fsm_core.expressions import ExpressionEvaluationError
from pystator.registry.machines import MachineRegistry
from pystator.schedulers.fleet_timers import DbTimerSink, TimerFiring
from pystator.services import entities
from pystator.stores.sql import entity_queries, history_queries
from pystator.stores.sql.schema import action_outbox, worker_timers
from tests.support.worker import FakeClock

pytestmark = pytest.mark.integration

MACHINE = "create_enter"
# open (initial; on_enter: greet when vip, audit when amount > 100, two effects, record)
#   --close--> closed --reopen--> open; open --expire (after 1h)--> closed
CONFIG: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": MACHINE},
    "states": [
        {
            "name": "open",
            "type": "initial",
            "on_enter": [
                {"name": "greet", "when": {"field": "vip", "op": "eq", "value": True}},
                {"name": "audit", "when": "amount > 100"},
                {"set": {"stage": "opened"}},
                {"increment": "openings"},
                "record",
            ],
        },
        {"name": "closed", "type": "stable"},
    ],
    "transitions": [
        {"trigger": "close", "source": "open", "dest": "closed"},
        {"trigger": "reopen", "source": "closed", "dest": "open"},
        {"trigger": "expire", "source": "open", "dest": "closed", "after": "1h"},
    ],
}
#: The create context: `greet`'s condition holds, `audit`'s does not.
CONTEXT = {"vip": True, "amount": 5}
STORED = {**CONTEXT, "stage": "opened", "openings": 1}


@pytest.fixture
def seen() -> list[tuple[str, dict[str, Any]]]:
    """Each action run: its name and the (public part of the) context it received."""
    return []


def bind(
    machine: StateMachine,
    seen: list[tuple[str, dict[str, Any]]],
    names: tuple[str, ...] = ("greet", "audit", "record"),
) -> StateMachine:
    actions = ActionRegistry()
    for name in names:
        actions.register(name, _recorder(name, seen))
    machine.bind_actions(actions)
    return machine


def _recorder(name: str, seen: list[tuple[str, dict[str, Any]]]) -> Any:
    def action(context: Mapping[str, Any]) -> None:
        seen.append((name, {k: v for k, v in context.items() if not k.startswith("_")}))

    return action


@pytest.fixture
def machine(seen: list[tuple[str, dict[str, Any]]]) -> StateMachine:
    return bind(StateMachine.from_dict(CONFIG), seen)


def _ran(results: tuple[dict[str, Any], ...]) -> list[tuple[str, str]]:
    return [(r["name"], r["status"]) for r in results]


def _timers(engine: sa.Engine) -> list[tuple[str, str, str, int]]:
    columns = worker_timers.c
    query = sa.select(columns.entity_id, columns.trigger, columns.timer_state, columns.timer_entry)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return sorted((str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows)


def _stored(engine: sa.Engine, entity_id: str, machine: str = MACHINE) -> Any:
    with engine.connect() as conn:
        record = entity_queries.load_record(conn, machine, entity_id)
        history = history_queries.load_history(conn, machine, entity_id)
    return record, history


def test_create_runs_the_on_enter_actions_whose_when_holds_and_stores_the_effects(
    engine: sa.Engine, machine: StateMachine, seen: list[tuple[str, dict[str, Any]]]
) -> None:
    record, results = entities.create_reporting(engine, machine, "c1", CONTEXT)

    assert (record.state, record.version, dict(record.context)) == ("open", 1, STORED)
    assert _ran(results) == [("greet", "ok"), ("record", "ok")]
    assert all(r["attempts"] == 1 and r["error"] is None for r in results)
    # the actions ran after the commit with the final context (every effect applied)
    assert seen == [("greet", STORED), ("record", STORED)]
    stored, history = _stored(engine, "c1")
    assert (stored.state, dict(stored.context), dict(stored.entries)) == (
        "open",
        STORED,
        {"open": 1},
    )
    [created] = history
    assert (created.trigger, created.source_state, created.target_state) == (
        entities.CREATED_TRIGGER,
        None,
        "open",
    )
    assert created.actions == ("greet", "record")
    assert _timers(engine) == [("c1", "expire", "open", 1)]

    seen.clear()
    _, results = entities.create_reporting(engine, machine, "c2", {"vip": False, "amount": 500})
    assert _ran(results) == [("audit", "ok"), ("record", "ok")]
    assert [name for name, _ in seen] == ["audit", "record"]


def test_entering_the_same_state_by_a_transition_gives_the_same_actions_and_context(
    engine: sa.Engine, machine: StateMachine, seen: list[tuple[str, dict[str, Any]]]
) -> None:
    """Parity: `open` entered by a create, by the synchronous path and by the fleet, each from
    the same context (the transitions start from an entity imported into `closed` with it)."""
    _, created = entities.create_reporting(engine, machine, "by-create", CONTEXT)
    by_create = list(seen)

    seen.clear()
    entities.import_entity(engine, machine, "by-event", state="closed", context=CONTEXT)
    outcome = entities.send_event(engine, machine, "by-event", "reopen")
    assert outcome.success, outcome.error_detail
    assert outcome.action_results == created
    assert seen == by_create
    assert dict(outcome.context) == STORED

    entities.import_entity(engine, machine, "by-fleet", state="closed", context=CONTEXT)
    clock = FakeClock()
    clock.now = utc_now()
    registry = MachineRegistry([machine])
    producer = Producer(engine=engine, machines=registry, nudger=NullNudger(), clock=clock)
    producer.submit(EventSpec(machine=MACHINE, entity_id="by-fleet", trigger="reopen"))
    assert Processor(engine, registry, clock=clock).drain() == 1
    with engine.connect() as conn:
        planned = conn.execute(
            sa.select(action_outbox.c.action)
            .where(action_outbox.c.entity_id == "by-fleet")
            .order_by(action_outbox.c.id)
        ).all()
    assert [row[0] for row in planned] == [r["name"] for r in created]

    for entity_id in ("by-create", "by-event", "by-fleet"):
        record, history = _stored(engine, entity_id)
        assert (record.state, dict(record.context)) == ("open", STORED), entity_id
        assert history[-1].actions == ("greet", "record"), entity_id


BROKEN: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "create_broken"},
    "states": [
        {
            "name": "open",
            "type": "initial",
            "on_enter": [
                {"set": {"stage": "opened"}},
                {"name": "record", "when": "amount / n > 1"},
            ],
        },
        {"name": "closed", "type": "stable"},
    ],
    "transitions": [
        {"trigger": "reopen", "source": "closed", "dest": "open"},
        {"trigger": "expire", "source": "open", "dest": "closed", "after": "1h"},
    ],
}


def test_a_when_that_cannot_be_evaluated_refuses_the_create_and_stores_nothing(
    engine: sa.Engine, seen: list[tuple[str, dict[str, Any]]]
) -> None:
    broken = bind(StateMachine.from_dict(BROKEN), seen)
    context = {"amount": 1, "n": 0}
    with pytest.raises(ExpressionEvaluationError) as refused:
        entities.create(engine, broken, "b1", context)
    assert refused.value.code.value == "GUARD_FAILED"
    assert "division by zero" in refused.value.message
    assert _stored(engine, "b1", "create_broken") == (None, [])
    assert _timers(engine) == []
    assert seen == []

    # a transition into the same state fails the same way, and is reported, not stored
    entities.import_entity(engine, broken, "b2", state="closed", context=context)
    outcome = entities.send_event(engine, broken, "b2", "reopen")
    assert outcome.success is False and outcome.version == 1
    assert outcome.error_detail == entities.error_detail(refused.value)
    # with a context it can evaluate, the same create goes through
    record, results = entities.create_reporting(engine, broken, "b1", {"amount": 5, "n": 1})
    assert (dict(record.context), _ran(results)) == (
        {"amount": 5, "n": 1, "stage": "opened"},
        [("record", "ok")],
    )


def test_an_unregistered_on_enter_action_refuses_the_create_before_anything_is_stored(
    engine: sa.Engine, seen: list[tuple[str, dict[str, Any]]]
) -> None:
    machine = bind(StateMachine.from_dict(CONFIG), seen, ("greet", "record"))  # no `audit`
    entities.create(engine, machine, "ok", CONTEXT)  # `audit` is skipped: it need not exist
    with pytest.raises(ActionNotFoundError):
        entities.create(engine, machine, "refused", {"amount": 500})
    assert _stored(engine, "refused") == (None, [])
    assert [t[0] for t in _timers(engine)] == ["ok"]
    assert [name for name, _ in seen] == ["greet", "record"]


def test_an_existing_entity_is_a_conflict_and_runs_nothing(
    engine: sa.Engine, machine: StateMachine, seen: list[tuple[str, dict[str, Any]]]
) -> None:
    entities.create(engine, machine, "c1", CONTEXT)
    seen.clear()
    with pytest.raises(ConflictError):
        entities.create(engine, machine, "c1", {"vip": True, "amount": 500})
    assert seen == []
    record, history = _stored(engine, "c1")
    assert (dict(record.context), len(history)) == (STORED, 1)


NESTED: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "create_nested"},
    "states": [
        {
            "name": "work",
            "type": "initial",
            "initial_child": "first",
            "on_enter": [{"name": "greet", "when": {"field": "vip", "op": "eq", "value": True}}],
        },
        {"name": "first", "parent": "work", "on_enter": ["record", {"increment": "steps"}]},
        {"name": "out", "type": "stable"},
    ],
    "transitions": [{"trigger": "stall", "source": "work", "dest": "out", "after": "1h"}],
}


def test_a_compound_initial_state_is_entered_whole_and_its_timer_fires(
    engine: sa.Engine, seen: list[tuple[str, dict[str, Any]]]
) -> None:
    nested = bind(StateMachine.from_dict(NESTED), seen)
    record, results = entities.create_reporting(engine, nested, "n1", {"vip": True})

    assert (record.state, dict(record.entries)) == ("first", {"work": 1, "first": 1})
    assert _ran(results) == [("greet", "ok"), ("record", "ok")]  # outermost first
    assert dict(record.context) == {"vip": True, "steps": 1}
    assert _timers(engine) == [("n1", "stall", "work", 1)]

    clock = FakeClock()
    clock.now = utc_now() + timedelta(hours=1, minutes=1)
    sink = DbTimerSink(TimerFiring(engine, clock=clock))
    processor = Processor(engine, MachineRegistry([nested]), timers=sink, clock=clock)
    assert sink.poll_once() == 1
    processor.drain()
    # the parent's timer belongs to the entry the create recorded: it applies, not stale
    assert _stored(engine, "n1", "create_nested")[0].state == "out"
