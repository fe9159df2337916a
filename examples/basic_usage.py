"""Order lifecycle: load a machine, process events, register guards and actions, persist.

Run from the repository root (in the project's virtualenv, e.g. after ``make demo``)::

    python examples/basic_usage.py

1. ``order_fsm.yaml`` (the quick-start machine) is loaded and driven with the pure
   ``machine.process(state, trigger, context)`` — nothing is stored.
2. The same machine through an ``EntitySession`` (``machine.create()``), a stateful object for
   one order.
3. The machine is extended in Python with an ``execution_report`` event: a guard decides
   whether the report completes the order, an action updates positions, a declarative effect
   adds up the filled quantity.
4. An ``Orchestrator`` applies the events to orders kept in an ``InMemoryStateStore``: it loads
   the order, computes the transition, saves it (optimistic locking), then runs the actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pystator import (
    ActionRegistry,
    GuardRegistry,
    InMemoryStateStore,
    Orchestrator,
    StateMachine,
    StateMachineBuilder,
    TransitionResult,
)
from pystator.visualization import get_statistics, to_mermaid

HERE = Path(__file__).resolve().parent
ORDER_FSM = HERE / "order_fsm.yaml"


def show(label: str, result: TransitionResult) -> None:
    """One line per result: where it went, or why it did not."""
    if result.success:
        print(f"  {label}: {result.source_state} -> {result.target_state}")
    else:
        reason = result.metadata.get("reason")
        print(f"  {label}: rejected ({reason}) - {result.error}")


def pure_processing(machine: StateMachine) -> None:
    print("1. Pure processing (nothing is stored)")
    show("PENDING + exchange_ack", machine.process("PENDING", "exchange_ack", {}))
    show("OPEN + fill", machine.process("OPEN", "fill", {}))
    show("FILLED + fill", machine.process("FILLED", "fill", {}))
    show("PENDING + fill", machine.process("PENDING", "fill", {}))
    print(f"  triggers allowed from OPEN: {machine.allowed_triggers('OPEN')}")


def entity_session(machine: StateMachine) -> None:
    print("2. EntitySession: one order in memory")
    order = machine.create(context={"order_id": "A-1", "order_qty": 100})
    order.exchange_ack()  # generated from the trigger name; same as order.send("exchange_ack")
    print(f"  after exchange_ack: {order.current_state} (is_open={order.is_open})")
    order.send("fill", fill_qty=100)  # the payload is merged into the context
    print(f"  after fill: {order.current_state}, final={order.is_final}, context={order.context}")


guards = GuardRegistry()
actions = ActionRegistry()


@guards.decorator("is_full_fill")
def is_full_fill(ctx: Mapping[str, Any]) -> bool:
    """True when this report's quantity completes the order."""
    filled = ctx.get("filled_qty") or 0
    return bool(filled + ctx["fill_qty"] >= ctx["order_qty"])


@actions.decorator("record_partial_fill")
def record_partial_fill(ctx: Mapping[str, Any]) -> None:
    print(f"    action record_partial_fill: {ctx['_entity_id']} has {ctx['filled_qty']} filled")


@actions.decorator("update_positions")
def update_positions(ctx: Mapping[str, Any]) -> None:
    print(f"    action update_positions: {ctx['_entity_id']} done, {ctx['filled_qty']} filled")


def with_execution_reports(doc: Mapping[str, Any]) -> StateMachine:
    """The quick-start machine plus an ``execution_report`` event with a guard and actions.

    ``guards`` and ``actions`` are bound to the machine. The first rule whose guards pass wins: a report that completes the order goes to FILLED,
    any other report stays in OPEN (an internal transition) and is recorded.
    """
    add_fill = {"compute": {"filled_qty": "(filled_qty if filled_qty else 0) + fill_qty"}}
    return (
        StateMachineBuilder.from_dict(doc)
        .transition(
            "execution_report",
            "OPEN",
            "FILLED",
            guards=["is_full_fill"],
            actions=[add_fill, "update_positions"],
        )
        .transition(
            "execution_report",
            "OPEN",
            "OPEN",
            internal=True,
            actions=[add_fill, "record_partial_fill"],
        )
        .build(guards=guards, actions=actions)
    )


def orchestrated(machine: StateMachine) -> None:
    print("3. Guards and actions (process plans, it does not run them)")
    planned = machine.process("OPEN", "execution_report", {"order_qty": 100, "fill_qty": 100})
    print(f"  full report from OPEN -> {planned.target_state}, planned {planned.all_actions}")
    planned = machine.process("OPEN", "execution_report", {"order_qty": 100, "fill_qty": 30})
    print(f"  partial report from OPEN -> {planned.target_state}, planned {planned.all_actions}")

    print("4. Orchestrator + InMemoryStateStore: load, step, save, then run the actions")
    store = InMemoryStateStore()
    events: list[tuple[str, dict[str, Any]]] = [
        ("exchange_ack", {"order_qty": 100}),
        ("execution_report", {"fill_qty": 40}),
        ("execution_report", {"fill_qty": 60}),
        ("fill", {}),
    ]
    with Orchestrator(machine, store) as orchestrator:
        for trigger, context in events:
            result = orchestrator.process_event("order-1", trigger, context)
            show(f"order-1 {trigger} {context}", result)
        record = orchestrator.get_record("order-1")
        assert record is not None
        print(
            f"  stored: state={record.state} version={record.version} "
            f"filled_qty={record.context['filled_qty']}"
        )


def main() -> None:
    machine = StateMachine.from_yaml(ORDER_FSM)
    print(f"Loaded {machine.name} v{machine.version}: states {list(machine.states)}")
    pure_processing(machine)
    entity_session(machine)
    extended = with_execution_reports(yaml.safe_load(ORDER_FSM.read_text()))
    orchestrated(extended)
    stats = get_statistics(extended)
    print(
        f"Extended machine: {stats['state_count']} states, {stats['transition_count']} "
        f"transitions, {stats['guard_count']} guard, {stats['action_count']} actions"
    )
    print(to_mermaid(extended, title="Order lifecycle", show_actions=True))


if __name__ == "__main__":
    main()
