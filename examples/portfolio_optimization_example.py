"""Hierarchical states: a portfolio rebalancing workflow whose phases (data preparation,
optimisation, execution) are compound states with steps inside (``portfolio_optimization_fsm.yaml``).

Run from the repository root (in the project's virtualenv, e.g. after ``make demo``)::

    python examples/portfolio_optimization_example.py

The script does the work of each step in plain Python (prices → returns → volatilities →
inverse-volatility weights → orders) and tells an ``EntitySession`` what happened; the machine
decides the next step. After each step an ``ActionExecutor`` runs the actions the transition
planned (phase logging on the compound states' ``on_enter``/``on_exit``, sending orders …).

* The first weights put too much in one asset: the ``weights_within_limits`` guard refuses
  them, the next rule sends the workflow back to ``solving`` with the cap enforced.
* A second run aborts from inside a phase: the ``abort`` rule is declared on the phases, so it
  applies to every step, and leaving exits the step first, then its phase.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

from pystator import (
    ActionExecutor,
    ActionRegistry,
    EntitySession,
    GuardRegistry,
    StateMachine,
    TransitionResult,
)

HERE = Path(__file__).resolve().parent
PORTFOLIO_FSM = HERE / "portfolio_optimization_fsm.yaml"

#: Daily closes of four instruments (made up, deterministic); ``None`` is a missing quote.
PRICES: dict[str, list[float | None]] = {
    "EQUITY": [100.0, 102.0, 99.5, 103.0, 101.0, 104.5, 102.0, 106.0],
    "TECH": [50.0, 52.5, 49.0, 53.0, 51.0, 55.0, 52.0, 56.5],
    "BONDS": [80.0, 80.2, 80.1, 80.3, 80.2, 80.4, 80.3, 80.5],
    "GOLD": [180.0, 182.0, None, 181.0, 184.0, 183.0, 185.0, 186.0],
}
HOLDINGS = {"EQUITY": 40_000.0, "TECH": 30_000.0, "BONDS": 20_000.0, "GOLD": 10_000.0}
MAX_WEIGHT = 0.40

guards = GuardRegistry()
actions = ActionRegistry()


@guards.decorator("weights_within_limits")
def weights_within_limits(ctx: Mapping[str, Any]) -> bool:
    """Fully invested, and no asset above ``max_weight``."""
    weights: Mapping[str, float] = ctx["weights"]
    return math.isclose(sum(weights.values()), 1.0) and max(weights.values()) <= ctx["max_weight"]


@actions.decorator("log_phase")
def log_phase(ctx: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    print(f"    [{params['phase']} {params['event']}]")


@actions.decorator("send_orders")
def send_orders(ctx: Mapping[str, Any]) -> None:
    for ticker, amount in ctx["orders"].items():
        print(f"    order: {'BUY ' if amount > 0 else 'SELL'} {ticker:<6} {abs(amount):>9,.0f}")


@actions.decorator("notify_failure")
def notify_failure(ctx: Mapping[str, Any]) -> None:
    print(f"    workflow failed: {ctx.get('failure_reason', 'unknown')}")


# --- the work of each step: context in, (event, payload) out ------------------------------------

Step = Callable[[Mapping[str, Any]], tuple[str, dict[str, Any]]]


def fetch_prices(ctx: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    return "prices_loaded", {"tickers": sorted(PRICES), "prices": PRICES}


def clean_data(ctx: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Fill a missing quote with the previous close."""
    cleaned: dict[str, list[float]] = {}
    for ticker, series in ctx["prices"].items():
        filled: list[float] = []
        for price in series:
            filled.append(price if price is not None else filled[-1])
        cleaned[ticker] = filled
    return "data_cleaned", {"prices": cleaned}


def compute_returns(ctx: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    returns = {
        ticker: [b / a - 1 for a, b in pairwise(series)] for ticker, series in ctx["prices"].items()
    }
    return "returns_ready", {"returns": returns}


def estimate_risk(ctx: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    def stdev(values: list[float]) -> float:
        mean = sum(values) / len(values)
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))

    return "risk_estimated", {"volatility": {t: stdev(r) for t, r in ctx["returns"].items()}}


def solve(ctx: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Inverse-volatility weights; with ``enforce_cap``, capped at ``max_weight``."""
    inverse = {t: 1 / v for t, v in ctx["volatility"].items()}
    weights = {t: w / sum(inverse.values()) for t, w in inverse.items()}
    if ctx.get("enforce_cap"):
        weights = capped(weights, ctx["max_weight"])
    return "solved", {"weights": weights}


def capped(weights: Mapping[str, float], cap: float) -> dict[str, float]:
    """Clip weights at ``cap`` and share the excess among the others, pro rata, until none
    is above it."""
    result = dict(weights)
    while True:
        over = {t for t, w in result.items() if w > cap + 1e-12}
        if not over:
            return result
        excess = sum(result[t] - cap for t in over)
        free = {t: w for t, w in result.items() if w < cap}
        for t in over:
            result[t] = cap
        for t, w in free.items():
            result[t] = w + excess * w / sum(free.values())


def validate(ctx: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    shown = ", ".join(f"{t} {w:.1%}" for t, w in sorted(ctx["weights"].items()))
    print(f"    weights (run {ctx['solver_runs']}): {shown}")
    return "validated", {}


def generate_orders(ctx: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    total = sum(HOLDINGS.values())
    orders = {t: round(w * total - HOLDINGS[t], 2) for t, w in sorted(ctx["weights"].items())}
    return "orders_generated", {"orders": orders}


def fills(ctx: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    return "orders_filled", {}


STEPS: dict[str, Step] = {
    "fetching_prices": fetch_prices,
    "cleaning_data": clean_data,
    "computing_returns": compute_returns,
    "estimating_risk": estimate_risk,
    "solving": solve,
    "validating_weights": validate,
    "generating_orders": generate_orders,
    "rebalancing": fills,
}
PHASES = ("data_preparation", "optimization", "execution")


def send(
    session: EntitySession, executor: ActionExecutor, trigger: str, **payload: Any
) -> TransitionResult:
    """Send one event, print the move, then run the actions it planned."""
    result = session.send(trigger, **payload)
    if not result.success:
        raise RuntimeError(f"{trigger} refused: {result.error}")
    phase = next((p for p in PHASES if session.is_in(p)), "-")
    print(f"  {trigger}: {result.source_state} -> {result.target_state} (phase: {phase})")
    executor.execute(result, session.context)
    return result


def rebalance(machine: StateMachine, executor: ActionExecutor) -> None:
    print("1. Rebalancing run")
    session = machine.create(context={"max_weight": MAX_WEIGHT, "max_solver_runs": 3})
    send(session, executor, "start")
    while not session.is_final:
        trigger, payload = STEPS[session.current_state](session.context)
        send(session, executor, trigger, **payload)
    print(f"  finished in {session.current_state} after {session.context['solver_runs']} solves")


def aborted(machine: StateMachine, executor: ActionExecutor) -> None:
    print("2. Aborting from inside a phase")
    session = machine.create(context={"max_weight": MAX_WEIGHT, "max_solver_runs": 3})
    send(session, executor, "start")
    send(session, executor, "prices_loaded", tickers=["EQUITY", "BONDS"], prices=PRICES)
    result = send(session, executor, "abort", failure_reason="operator abort")
    print(f"  exited {list(result.states_exited)}, entered {list(result.states_entered)}")


def main() -> None:
    machine = StateMachine.from_yaml(PORTFOLIO_FSM)
    machine.bind_guards(guards)
    executor = ActionExecutor(actions)
    print(f"Loaded {machine.name}: {machine.definition.meta.description}")
    rebalance(machine, executor)
    aborted(machine, executor)


if __name__ == "__main__":
    main()
