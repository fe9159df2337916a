"""Each runnable example (examples/README.md) runs as a script, exits 0 and prints what it
promises; its machine lints clean."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from pystator import StateMachine, lint
from tests.conftest import EXAMPLES

#: Script -> lines its output must contain (in this order).
EXPECTED: dict[str, list[str]] = {
    "basic_usage.py": [
        "Loaded order_management v1.0.0: states ['PENDING', 'OPEN', 'FILLED']",
        "  PENDING + exchange_ack: PENDING -> OPEN",
        "  FILLED + fill: rejected (terminal_state) - state 'FILLED' is terminal: no transition"
        " leaves it",
        "  after fill: FILLED, final=True, context={'order_id': 'A-1', 'order_qty': 100,"
        " 'fill_qty': 100}",
        "  full report from OPEN -> FILLED, planned ('update_positions',)",
        "  partial report from OPEN -> OPEN, planned ('record_partial_fill',)",
        "  order-1 exchange_ack {'order_qty': 100}: PENDING -> OPEN",
        "    action record_partial_fill: order-1 has 40 filled",
        "  order-1 execution_report {'fill_qty': 40}: OPEN -> OPEN",
        "    action update_positions: order-1 done, 100 filled",
        "  order-1 execution_report {'fill_qty': 60}: OPEN -> FILLED",
        "  order-1 fill {}: rejected (terminal_state) - state 'FILLED' is terminal: no transition"
        " leaves it",
        "  stored: state=FILLED version=3 filled_qty=100",
        "stateDiagram-v2",
        "    OPEN --> FILLED : execution_report [is_full_fill] / compute, update_positions",
    ],
    "day_trading_example.py": [
        "  entering session: trading=scanning risk_monitor=within_limits data_feed=connecting",
        "  limit_breached: left scanning, within_limits -> trading=halted risk_monitor=breached"
        " data_feed=live",
        "    action open_session (desk-7)",
        "    rejected (guard_rejected: expr: feed_live and drawdown_pct < warn_drawdown_pct)",
        "    rejected (guard_rejected: signal_is_strong)",
        "    action place_entry_order (desk-7)",
        "    -> session[trading=entering,risk_monitor=within_limits,data_feed=live]",
        "    -> session[trading=in_position,risk_monitor=warning,data_feed=stale]",
        "  limit_breached",
        "    action flatten_positions (desk-7)",
        "    action place_exit_order (desk-7)",
        "    -> session[trading=exiting,risk_monitor=breached,data_feed=stale]",
        "    -> session[trading=halted,risk_monitor=breached,data_feed=stale]",
        "    action close_session (desk-7)",
        "    -> closed",
        "  end of day: closed, trades=1",
    ],
    "portfolio_optimization_example.py": [
        "  start: idle -> fetching_prices (phase: data_preparation)",
        "    [data_preparation started]",
        "  returns_ready: computing_returns -> estimating_risk (phase: optimization)",
        "    [data_preparation finished]",
        "    [optimization started]",
        "  validated: validating_weights -> solving (phase: optimization)",
        "    weights (run 2): BONDS 40.0%, EQUITY 14.0%, GOLD 40.0%, TECH 6.0%",
        "  validated: validating_weights -> generating_orders (phase: execution)",
        "    order: BUY  BONDS     20,000",
        "  orders_filled: rebalancing -> completed (phase: -)",
        "  finished in completed after 2 solves",
        "  abort: cleaning_data -> failed (phase: -)",
        "    workflow failed: operator abort",
        "  exited ['cleaning_data', 'data_preparation'], entered ['failed']",
    ],
}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_and_prints_its_story(script: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,  # the scripts find their YAML themselves
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    position = 0
    for expected in EXPECTED[script]:
        assert expected in lines[position:], f"missing or out of order: {expected!r}\n{done.stdout}"
        position = lines.index(expected, position) + 1


def _module(script: str) -> ModuleType:
    """Import an example script as a module (its ``main()`` does not run)."""
    spec = importlib.util.spec_from_file_location(f"example_{script[:-3]}", EXAMPLES / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("script", "machine"),
    [
        ("day_trading_example.py", "day_trading_fsm.yaml"),
        ("portfolio_optimization_example.py", "portfolio_optimization_fsm.yaml"),
    ],
)
def test_example_machines_lint_clean_with_the_scripts_registries(script: str, machine: str) -> None:
    """Every guard and action the YAML names is registered by its script, nothing is dead."""
    module = _module(script)
    found = lint(
        StateMachine.from_yaml(EXAMPLES / machine), guards=module.guards, actions=module.actions
    )
    assert found == []


def test_basic_usage_machines_lint_clean() -> None:
    assert lint(StateMachine.from_yaml(EXAMPLES / "order_fsm.yaml")) == []
    module = _module("basic_usage.py")
    extended = module.with_execution_reports(
        yaml.safe_load((EXAMPLES / "order_fsm.yaml").read_text())
    )
    assert lint(extended) == []  # built with the script's registries bound


def test_every_example_script_is_tested_and_documented() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(EXPECTED)
    readme = (EXAMPLES / "README.md").read_text()
    for script in scripts:
        assert f"python examples/{script}" in readme
