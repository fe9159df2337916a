"""Parallel states: a trading session whose trading loop, risk monitor and data feed run side
by side (``day_trading_fsm.yaml``).

Run from the repository root (in the project's virtualenv, e.g. after ``make demo``)::

    python examples/day_trading_example.py

1. The pure parallel API: ``machine.enter_parallel_state("session")`` gives the configuration
   (one active state per region), ``machine.process_parallel(config, event, context)`` applies
   an event to every region at once and returns one result per region that moved.
2. A whole session through an ``Orchestrator`` with an ``InMemoryStateStore``: the entity's
   state is stored as one string, ``session[trading=…,risk_monitor=…,data_feed=…]``; guards
   read the context, effects keep it up to date, actions run after each committed step.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pystator import (
    ActionRegistry,
    GuardRegistry,
    InMemoryStateStore,
    Orchestrator,
    ParallelConfiguration,
    StateMachine,
)

HERE = Path(__file__).resolve().parent
DAY_TRADING_FSM = HERE / "day_trading_fsm.yaml"

guards = GuardRegistry()
actions = ActionRegistry()


@guards.decorator("signal_is_strong")
def signal_is_strong(ctx: Mapping[str, Any]) -> bool:
    """Trade only signals of strength 0.7 or more."""
    return float(ctx.get("signal_strength") or 0) >= 0.7


def _announce(name: str) -> None:
    """Register an action that prints what it would do for real."""

    def action(ctx: Mapping[str, Any]) -> None:
        print(f"    action {name} ({ctx['_entity_id']})")

    actions.register(name, action)


for _name in (
    "open_session",
    "close_session",
    "place_entry_order",
    "place_exit_order",
    "alert_risk_desk",
    "alert_operations",
    "flatten_positions",
):
    _announce(_name)


def regions(config: ParallelConfiguration | str) -> str:
    """``trading=scanning risk_monitor=within_limits …`` (or the plain state)."""
    if isinstance(config, ParallelConfiguration):
        return " ".join(f"{region}={leaf}" for region, leaf in config.regions)
    return config


def pure_parallel_api(machine: StateMachine) -> None:
    print("1. Parallel configuration, computed without storing anything")
    config: ParallelConfiguration | str = machine.enter_parallel_state("session")
    print(f"  entering session: {regions(config)}")
    context: dict[str, Any] = {"warn_drawdown_pct": 2.0, "drawdown_pct": 0.0}
    for event in ("feed_connected", "limit_breached"):
        config, results = machine.process_parallel(config, event, context)
        for result in results:  # one result per region that moved, in region order
            if result.context is not None:
                context = {**context, **result.context}
        moved = ", ".join(state for result in results for state in result.states_exited) or "-"
        print(f"  {event}: left {moved} -> {regions(config)}")


def orchestrated_session(machine: StateMachine) -> None:
    print("2. A trading day through the Orchestrator")
    store = InMemoryStateStore()
    day: list[tuple[str, dict[str, Any]]] = [
        ("opening_bell", {"warn_drawdown_pct": 2.0, "drawdown_pct": 0.0}),
        ("signal", {"signal_strength": 0.9}),  # rejected: the feed is not live yet
        ("feed_connected", {}),
        ("signal", {"signal_strength": 0.4}),  # rejected: too weak
        ("signal", {"signal_strength": 0.8}),
        ("entry_filled", {}),
        ("pnl_update", {"drawdown_pct": 2.5}),  # risk monitor: warning
        ("heartbeat_missed", {}),  # data feed: stale (trading keeps its position)
        ("limit_breached", {}),  # risk: breached, trading: exiting - one event, two regions
        ("exit_filled", {}),  # trading: halted, because the risk limit was breached
        ("closing_bell", {}),
    ]
    with Orchestrator(machine, store, guards=guards, actions=actions) as orchestrator:
        for trigger, context in day:
            print(f"  {trigger} {context}" if context else f"  {trigger}")
            result = orchestrator.process_event("desk-7", trigger, context)
            if result.success:
                print(f"    -> {result.target_state}")
            else:
                guard = result.metadata.get("guard_name")
                print(f"    rejected ({result.metadata.get('reason')}: {guard})")
        record = orchestrator.get_record("desk-7")
        assert record is not None
        print(f"  end of day: {record.state}, trades={record.context.get('trades', 0)}")


def main() -> None:
    machine = StateMachine.from_yaml(DAY_TRADING_FSM)
    machine.bind_guards(guards)
    machine.bind_actions(actions)
    print(f"Loaded {machine.name}: {machine.definition.meta.description}")
    pure_parallel_api(machine)
    orchestrated_session(machine)


if __name__ == "__main__":
    main()
