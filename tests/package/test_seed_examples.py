"""Every Python example of the seed README, each run unchanged as its own test.

The examples are copied verbatim below (``SEED_EXAMPLES``). Where an example relies on something
the README leaves out — a YAML file, a trigger, a variable defined elsewhere, a third-party
module — the test supplies it and says so. Files are written into ``tmp_path`` and the test
runs there. Examples that need the Orchestrator, stores or schedulers skip until those land.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from tests.support.virtual_time import skipping_time

SEED_README = Path("/work/shared/seeds/004_e778e6ff4896f72a.txt")

# --- the examples, verbatim ------------------------------------------------------------------

QUICK_START = """\
from pystator import StateMachine

machine = StateMachine.from_yaml("order_fsm.yaml")

# Pure computation: current state + event → next state
result = machine.process("PENDING", "exchange_ack", {})

print(result.success)        # True
print(result.target_state)   # OPEN
"""

FROM_YAML = """\
from pystator import StateMachine

machine = StateMachine.from_yaml("order_fsm.yaml")
result = machine.process("PENDING", "exchange_ack", {})
"""

FROM_DICT = """\
from pystator import StateMachine

config = {
    "meta": {"version": "1.0.0", "machine_name": "my_fsm", "strict_mode": True},
    "states": [
        {"name": "A", "type": "initial"},
        {"name": "B", "type": "stable"},
        {"name": "C", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "go", "source": "A", "dest": "B"},
        {"trigger": "done", "source": "B", "dest": "C"},
    ],
}
machine = StateMachine.from_dict(config)
result = machine.process("A", "go", {})
"""

ENTITY_SESSION = """\
from pystator import StateMachine

machine = StateMachine.from_yaml("order_fsm.yaml")

# Create a stateful instance for one entity (e.g. order-123)
order = machine.create(context={"order_id": "123", "order_qty": 100})

print(order.current_state)   # PENDING
print(order.is_pending)      # True  — auto-generated per-state property

# Send events; payload merges into context
order.send("exchange_ack")
print(order.current_state)   # OPEN

order.send("fill", fill_qty=100)
print(order.current_state)   # FILLED
print(order.is_final)        # True — entity has reached a terminal state

# Auto-generated trigger methods (same as send):
# order.exchange_ack()
# order.fill(fill_qty=100)

# Serialize/restore (e.g. to Redis or a DB)
snapshot = order.snapshot()
restored = EntitySession.from_snapshot(machine, snapshot)
"""

DECORATORS = """\
from pystator import StateMachine

machine = StateMachine.from_yaml("order_fsm.yaml")

@machine.guard("is_full_fill")
def is_full_fill(ctx):
    return ctx.get("fill_qty", 0) >= ctx.get("order_qty", 1)

@machine.action("update_positions")
def update_positions(ctx):
    print("Positions updated")

# Then: machine.process(...) and ActionExecutor(machine.action_registry).execute(result, context) to run actions
"""

REGISTRIES = """\
from pystator import StateMachine, GuardRegistry, ActionRegistry
from pystator.actions import ActionExecutor

machine = StateMachine.from_yaml("order_fsm.yaml")

guards = GuardRegistry()
guards.register("is_full_fill", lambda ctx: ctx.get("fill_qty", 0) >= ctx.get("order_qty", 1))
machine.bind_guards(guards)

actions = ActionRegistry()
actions.register("update_positions", lambda ctx: print("Positions updated"))
executor = ActionExecutor(actions)

result = machine.process("OPEN", "execution_report", {"fill_qty": 100, "order_qty": 100})
if result.success:
    # 1. Persist state change to your DB
    # 2. Then run actions
    executor.execute(result, {"fill_qty": 100, "order_qty": 100})
"""

ORCHESTRATOR_DELAYED = """\
import asyncio
from pystator import StateMachine, Orchestrator, GuardRegistry, ActionRegistry
from pystator import InMemoryStateStore
from pystator.scheduler import AsyncioScheduler

machine = StateMachine.from_yaml("my_fsm.yaml")  # has a transition with after: "2s"
store = InMemoryStateStore()
guards = GuardRegistry()
actions = ActionRegistry()
scheduler = AsyncioScheduler()

orchestrator = Orchestrator(
    machine=machine, state_store=store, guards=guards, actions=actions, scheduler=scheduler
)

async def main():
    await orchestrator.async_process_event("entity-1", "start", {})
    await asyncio.sleep(2.5)  # delayed transition fires
    await orchestrator.close()

asyncio.run(main())
"""

PYCHARTER = """\
from pystator import Orchestrator, ContextValidatorFn
from pycharter import Validator

validator = Validator.from_dir("contracts/order")

def order_context_validator(entity_id: str, state: str, trigger: str, ctx: dict):
    result = validator.validate_for_state(ctx, state)
    if result.is_valid:
        return True, []
    return False, [str(e) for e in result.errors]

orchestrator = Orchestrator(
    machine=machine,
    state_store=store,
    context_validator=order_context_validator,   # (entity_id, state, trigger, ctx) -> (ok, errors)
)
"""

HOOKS_AND_METRICS = """\
from pystator import LoggingHook, MetricsCollector, StateMachine, TransitionObserver

machine = StateMachine.from_yaml("order_fsm.yaml")

# Optional: attach hooks to a standalone observer (use at orchestrator/process level)
observer = TransitionObserver()
observer.add_hook(LoggingHook())
metrics = MetricsCollector()
observer.add_hook(metrics)

# ... process events ...
machine.process("PENDING", "exchange_ack", {})

summary = metrics.get_summary()
print(summary["total_transitions"])   # 1
print(summary["success_rate"])        # 1.0
print(summary["duration"])            # {"min_ms": ..., "avg_ms": ..., "p95_ms": ...}
"""

ERROR_HANDLING = """\
from pystator import (
    FSMError,             # base — catch everything
    GuardRejectedError,   # guard returned False
    InvalidTransitionError, UndefinedTriggerError,
    TerminalStateError,   # trying to leave a terminal state
    StaleVersionError,    # optimistic locking conflict
    ErrorCode,            # enum: GUARD_REJECTED, VALIDATION_FAILED, TERMINAL_STATE, …
)

try:
    result = machine.process(current_state, trigger, context)
except GuardRejectedError as e:
    print(e.guard_name, e.current_state)   # which guard failed and in which state
except TerminalStateError:
    print("Entity already in a terminal state")
except FSMError as e:
    print(e.code)   # ErrorCode member, e.g. ErrorCode.INVALID_TRIGGER
"""

SOFT_FAILURES = """\
result = machine.process(current_state, trigger, context)
if not result.success:
    print(result.error)          # FSMError or subclass
    print(result.metadata)       # {"reason": "guard_rejected", "guard_name": "is_full_fill", …}
"""

REF_STATE_MACHINE = """\
# Create
machine = StateMachine.from_yaml("config.yaml")
machine = StateMachine.from_dict(config_dict)

# Process (sync)
result = machine.process(current_state, trigger, context)

# Process (async, for async guards)
result = await machine.aprocess(current_state, trigger, context)

# Parallel states
config = machine.enter_parallel_state("parallel_state_name")
config, results = machine.process_parallel(config, event, context)

# Queries
machine.get_initial_state()
machine.get_available_transitions("STATE_NAME")
"""

REF_ENTITY_SESSION = """\
instance = machine.create(context={...}, initial_state=None)
instance.current_state       # str
instance.context             # dict
instance.is_<state>          # bool — auto-generated (e.g. instance.is_pending)
instance.<trigger>(**payload) # auto-generated method (e.g. instance.confirm())
instance.send(trigger, **payload)
await instance.asend(trigger, **payload)  # async
instance.allowed_triggers    # list[str]
instance.is_final            # bool — True if in a terminal state
snapshot = instance.snapshot()
instance2 = EntitySession.from_snapshot(machine, snapshot)
"""

REF_TRANSITION_RESULT = """\
result.success          # bool
result.source_state     # str
result.target_state     # str | None
result.trigger          # str
result.all_actions      # tuple[str, ...]  (exit + transition + enter)
result.error            # FSMError | None
result.metadata         # dict — e.g. {"reason": "guard_rejected", "guard_name": "..."}
"""

REF_GUARDS_ACTIONS = """\
guards = GuardRegistry()
guards.register("name", lambda ctx: bool)
@guards.decorator("name")
def my_guard(ctx: dict) -> bool: ...

actions = ActionRegistry()
actions.register("name", lambda ctx: None)
@actions.decorator()
def my_action(ctx: dict) -> None: ...

machine.bind_guards(guards)
executor = ActionExecutor(actions)
executor.execute(transition_result, context)
# Async: await executor.async_execute_parallel(result, context)
"""

REF_ORCHESTRATOR = """\
from pystator import Orchestrator, ContextValidatorFn

orchestrator = Orchestrator(
    machine=machine,
    state_store=store,
    guards=guards,
    actions=actions,
    context_validator=fn,    # ContextValidatorFn: (entity_id, state, trigger, ctx) -> (ok, errors)
    scheduler=scheduler,
    use_initial_state_when_missing=True,
)
result = orchestrator.process_event(entity_id, trigger, context)
result = await orchestrator.async_process_event(entity_id, trigger, context)
await orchestrator.close()  # shut down scheduler
"""

REF_HOOKS = """\
from pystator import LoggingHook, MetricsCollector, TransitionHook, TransitionObserver

observer = TransitionObserver()
observer.add_hook(LoggingHook())
metrics = MetricsCollector()
observer.add_hook(metrics)
# Use observer at your process/orchestrator level; then metrics.get_summary()
# returns {"total_transitions", "success_rate", "duration": {"avg_ms", "p95_ms", ...}}
"""

REF_ERROR_CODES = """\
from pystator import ErrorCode
# ErrorCode.GUARD_REJECTED, VALIDATION_FAILED, INVALID_TRIGGER, INVALID_STATE,
# TERMINAL_STATE, TIMEOUT, CONFIG, ACTION_FAILED, STALE_VERSION,
# GUARD_NOT_FOUND, ACTION_NOT_FOUND, UNDEFINED_STATE
"""

SEED_EXAMPLES = (
    QUICK_START,
    FROM_YAML,
    FROM_DICT,
    ENTITY_SESSION,
    DECORATORS,
    REGISTRIES,
    ORCHESTRATOR_DELAYED,
    PYCHARTER,
    HOOKS_AND_METRICS,
    ERROR_HANDLING,
    SOFT_FAILURES,
    REF_STATE_MACHINE,
    REF_ENTITY_SESSION,
    REF_TRANSITION_RESULT,
    REF_GUARDS_ACTIONS,
    REF_ORCHESTRATOR,
    REF_HOOKS,
    REF_ERROR_CODES,
)

# --- supplied files --------------------------------------------------------------------------

ORDER_FSM_YAML = (EXAMPLES / "order_fsm.yaml").read_text()

# The Option 2 example sends ``execution_report`` from OPEN with a guard ``is_full_fill`` and an
# action ``update_positions``; the quick-start YAML has neither, so this test supplies them.
ORDER_FSM_WITH_EXECUTION_REPORT_YAML = (
    ORDER_FSM_YAML
    + """\
  - trigger: execution_report
    source: OPEN
    dest: FILLED
    guards: [is_full_fill]
    actions: [update_positions]
"""
)

# ``my_fsm.yaml`` of the Orchestrator example: "has a transition with after: \"2s\"".
MY_FSM_YAML = """\
meta:
  version: "1.0.0"
  machine_name: "my_fsm"
states:
  - name: idle
    type: initial
  - name: waiting
    type: stable
  - name: done
    type: terminal
transitions:
  - trigger: start
    source: idle
    dest: waiting
  - trigger: expire
    source: waiting
    dest: done
    after: "2s"
"""

# ``config.yaml`` of the StateMachine API reference: it names a state ``STATE_NAME`` and a
# parallel state ``parallel_state_name``; the README does not show the file.
CONFIG_YAML = """\
meta:
  version: "1.0.0"
  machine_name: "reference"
states:
  - name: STATE_NAME
    type: initial
  - name: parallel_state_name
    type: parallel
    regions:
      - name: left
        initial: L1
        states:
          - name: L1
          - name: L2
      - name: right
        initial: R1
        states:
          - name: R1
          - name: R2
  - name: DONE
    type: terminal
transitions:
  - trigger: split
    source: STATE_NAME
    dest: parallel_state_name
  - trigger: left_next
    source: L1
    dest: L2
  - trigger: finish
    source: parallel_state_name
    dest: DONE
"""


# --- helpers ---------------------------------------------------------------------------------


def run_example(source: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``source`` as a module body (top-level ``await`` allowed) and return its namespace."""
    ns: dict[str, Any] = {"__name__": "__seed_example__"}
    ns.update(namespace or {})
    code = compile(source, "<seed example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, ns))  # the example itself awaits at top level
    else:
        exec(code, ns)
    return ns


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory holding the quick-start ``order_fsm.yaml``."""
    (tmp_path / "order_fsm.yaml").write_text(ORDER_FSM_YAML)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def _machine(source: str = ORDER_FSM_YAML) -> Any:
    from pystator import StateMachine

    return StateMachine.from_dict(__import__("yaml").safe_load(source))


# --- the verbatim guard ----------------------------------------------------------------------


@pytest.mark.skipif(not SEED_README.exists(), reason="the seed README is not on this machine")
def test_every_seed_example_is_copied_verbatim() -> None:
    blocks = re.findall(r"```python\n(.*?)```", SEED_README.read_text(), re.S)
    assert list(SEED_EXAMPLES) == blocks


# --- quick start and loading -----------------------------------------------------------------


def test_quick_start(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_example(QUICK_START)
    assert printed(capsys) == ["True", "OPEN"]


def test_quick_start_yaml_is_the_shipped_example() -> None:
    machine = _machine()
    assert machine.name == "order_management"
    assert machine.get_initial_state() == "PENDING"


def test_from_yaml(workdir: Path) -> None:
    ns = run_example(FROM_YAML)
    assert ns["result"].success and ns["result"].target_state == "OPEN"


def test_from_dict(workdir: Path) -> None:
    ns = run_example(FROM_DICT)
    assert ns["result"].success and ns["result"].target_state == "B"
    assert ns["machine"].name == "my_fsm"


def test_entity_session(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pystator import EntitySession

    # The example calls ``EntitySession.from_snapshot`` without importing it; the README's next
    # sentence says to import it from ``pystator``, so the test provides that import.
    ns = run_example(ENTITY_SESSION, {"EntitySession": EntitySession})
    assert printed(capsys) == ["PENDING", "True", "OPEN", "FILLED", "True"]
    restored = ns["restored"]
    assert restored.current_state == "FILLED"
    assert restored.context["order_id"] == "123" and restored.context["fill_qty"] == 100


# --- guards and actions ----------------------------------------------------------------------


def test_guards_and_actions_decorators(workdir: Path) -> None:
    ns = run_example(DECORATORS)
    machine = ns["machine"]
    assert machine.guard_registry.get("is_full_fill") is ns["is_full_fill"]
    assert machine.action_registry.get("update_positions") is ns["update_positions"]


def test_guards_and_actions_registries(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Supplied: the example's ``execution_report`` trigger (see the YAML constant above).
    (workdir / "order_fsm.yaml").write_text(ORDER_FSM_WITH_EXECUTION_REPORT_YAML)
    ns = run_example(REGISTRIES)
    assert ns["result"].success and ns["result"].target_state == "FILLED"
    assert printed(capsys) == ["Positions updated"]


def test_guards_and_actions_registries_reject_partial_fill(workdir: Path) -> None:
    (workdir / "order_fsm.yaml").write_text(ORDER_FSM_WITH_EXECUTION_REPORT_YAML)
    ns = run_example(REGISTRIES)
    result = ns["machine"].process("OPEN", "execution_report", {"fill_qty": 5, "order_qty": 100})
    assert not result.success and result.metadata["reason"] == "guard_rejected"
    assert result.metadata["guard_name"] == "is_full_fill"


# --- orchestrator, scheduler, context validation ---------------------------------------------


def test_orchestrator_and_delayed_transitions(workdir: Path) -> None:
    pytest.importorskip("pystator.orchestrator")
    pytest.importorskip("pystator.scheduler")
    (workdir / "my_fsm.yaml").write_text(MY_FSM_YAML)  # supplied: the README does not show it
    with skipping_time():  # the example's 2 s timer and 2.5 s sleep pass on a virtual clock
        ns = run_example(ORCHESTRATOR_DELAYED)
    record = ns["store"].load("my_fsm", "entity-1")
    assert record is not None and (record.state, record.version) == ("done", 2)
    history = ns["store"].history("my_fsm", "entity-1")
    assert [(h.trigger, h.origin) for h in history] == [("start", "direct"), ("expire", "timer")]
    assert ns["scheduler"].closed and ns["scheduler"].pending() == 0


def test_context_validation_with_pycharter(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pystator.orchestrator")
    from pystator import InMemoryStateStore

    # PyCharter is a third-party boundary: a tiny fake module stands in for it. Its validator
    # requires ``order_id`` in every state.
    class _Result:
        def __init__(self, errors: list[str]) -> None:
            self.errors = errors
            self.is_valid = not errors

    class Validator:
        @classmethod
        def from_dir(cls, path: str) -> Validator:
            assert path == "contracts/order"
            return cls()

        def validate_for_state(self, ctx: dict[str, Any], state: str) -> _Result:
            return _Result([] if "order_id" in ctx else [f"order_id is required in {state}"])

    fake = types.ModuleType("pycharter")
    fake.Validator = Validator  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pycharter", fake)

    # Supplied: ``machine`` and ``store``, which the example uses without defining.
    ns = run_example(PYCHARTER, {"machine": _machine(), "store": InMemoryStateStore()})
    orchestrator = ns["orchestrator"]
    rejected = orchestrator.process_event("order-1", "exchange_ack", {})
    assert not rejected.success and rejected.metadata["reason"] == "context_validation"
    accepted = orchestrator.process_event("order-1", "exchange_ack", {"order_id": "order-1"})
    assert accepted.success and accepted.target_state == "OPEN"


# --- hooks and errors ------------------------------------------------------------------------


def test_hooks_and_metrics(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The example never connects the observer to the machine; this test adds exactly one line,
    # ``machine.attach_observer(observer)``, right after the hooks are added.
    anchor = "observer.add_hook(metrics)\n"
    assert HOOKS_AND_METRICS.count(anchor) == 1
    source = HOOKS_AND_METRICS.replace(anchor, anchor + "machine.attach_observer(observer)\n")
    ns = run_example(source)
    lines = printed(capsys)
    assert lines[:2] == ["1", "1.0"]
    duration = ns["summary"]["duration"]
    assert {"min_ms", "avg_ms", "p95_ms"} <= set(duration)
    assert duration["min_ms"] >= 0


@pytest.mark.parametrize(
    ("current_state", "trigger", "expected_output"),
    [
        ("PENDING", "exchange_ack", []),  # success: nothing raised, nothing printed
        ("FILLED", "fill", []),  # terminal: a soft failure in the result, not an exception
        ("NOWHERE", "fill", ["ErrorCode.UNDEFINED_STATE"]),  # undefined state raises
    ],
)
def test_error_handling(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    current_state: str,
    trigger: str,
    expected_output: list[str],
) -> None:
    # Supplied: ``machine``, ``current_state``, ``trigger`` and ``context``.
    namespace = {
        "machine": _machine(),
        "current_state": current_state,
        "trigger": trigger,
        "context": {},
    }
    run_example(ERROR_HANDLING, namespace)
    assert printed(capsys) == expected_output


def test_soft_failures(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Supplied: a machine and an event it rejects (leaving the terminal state FILLED).
    namespace = {
        "machine": _machine(),
        "current_state": "FILLED",
        "trigger": "fill",
        "context": {},
    }
    ns = run_example(SOFT_FAILURES, namespace)
    lines = printed(capsys)
    assert len(lines) == 2
    assert "terminal_state" in lines[1]
    from pystator import FSMError, TerminalStateError

    assert isinstance(ns["result"].error, FSMError)
    assert isinstance(ns["result"].error, TerminalStateError)


# --- API reference (condensed) ---------------------------------------------------------------


def test_reference_state_machine(workdir: Path) -> None:
    from pystator import StateMachine

    (workdir / "config.yaml").write_text(CONFIG_YAML)  # supplied: see CONFIG_YAML
    # Supplied: the names the snippet uses without defining them.
    namespace = {
        "StateMachine": StateMachine,
        "config_dict": __import__("yaml").safe_load(CONFIG_YAML),
        "current_state": "STATE_NAME",
        "trigger": "split",
        "context": {},
        "event": "left_next",
    }
    ns = run_example(REF_STATE_MACHINE, namespace)
    assert ns["result"].success
    config, results = ns["config"], ns["results"]
    assert config is not None and results is not None


def test_reference_entity_session(workdir: Path) -> None:
    # This block is a signature sheet, not Python: ``instance.is_<state>`` and
    # ``instance.<trigger>(**payload)`` are placeholders and ``{...}`` stands for a context.
    # The test fills the placeholders with the quick-start machine's names and runs the rest
    # unchanged.
    with pytest.raises(SyntaxError):
        compile(REF_ENTITY_SESSION, "<seed example>", "exec")
    from pystator import EntitySession

    source = (
        REF_ENTITY_SESSION.replace("{...}", '{"order_id": "123"}')
        .replace("instance.is_<state>", "instance.is_pending")
        .replace("instance.<trigger>(**payload)", "instance.exchange_ack(**payload)")
    )
    namespace = {
        "machine": _machine(),
        "EntitySession": EntitySession,
        "trigger": "fill",
        "payload": {"fill_qty": 1},
    }
    ns = run_example(source, namespace)
    assert ns["instance2"].current_state == "FILLED"
    assert ns["instance2"].is_final


def test_reference_transition_result(workdir: Path) -> None:
    # Supplied: ``result`` (a successful quick-start transition).
    run_example(
        REF_TRANSITION_RESULT, {"result": _machine().process("PENDING", "exchange_ack", {})}
    )


def test_reference_guards_and_actions(workdir: Path) -> None:
    from pystator import ActionExecutor, ActionRegistry, GuardRegistry

    # Supplied: the registries' classes, a ``machine`` whose transition plans ``my_action``,
    # that transition's result and a context.
    machine = _machine(
        ORDER_FSM_YAML.replace("    dest: OPEN\n", "    dest: OPEN\n    actions: [my_action]\n")
    )
    namespace = {
        "GuardRegistry": GuardRegistry,
        "ActionRegistry": ActionRegistry,
        "ActionExecutor": ActionExecutor,
        "machine": machine,
        "transition_result": machine.process("PENDING", "exchange_ack", {}),
        "context": {},
    }
    ns = run_example(REF_GUARDS_ACTIONS, namespace)
    assert ns["guards"].names() == ("name",)  # the decorator re-registers "name"
    assert "name" in machine.guard_registry
    assert ns["actions"].names() == ("name", "my_action")


def test_reference_orchestrator(workdir: Path) -> None:
    pytest.importorskip("pystator.orchestrator")
    from pystator import ActionRegistry, GuardRegistry, InMemoryStateStore

    # Supplied: everything the snippet names without defining.
    namespace = {
        "machine": _machine(),
        "store": InMemoryStateStore(),
        "guards": GuardRegistry(),
        "actions": ActionRegistry(),
        "fn": lambda entity_id, state, trigger, ctx: (True, []),
        "scheduler": None,
        "entity_id": "order-9",
        "trigger": "exchange_ack",
        "context": {},
    }
    ns = run_example(REF_ORCHESTRATOR, namespace)
    assert ns["result"] is not None


def test_reference_hooks() -> None:
    ns = run_example(REF_HOOKS)
    assert ns["metrics"].get_summary()["total_transitions"] == 0


def test_reference_error_codes() -> None:
    from pystator import ErrorCode

    ns = run_example(REF_ERROR_CODES)
    assert ns["ErrorCode"] is ErrorCode
    names = re.findall(r"[A-Z_]{4,}", REF_ERROR_CODES)
    for name in names:
        assert name in ErrorCode.__members__, name
