"""Engine throughput: pystator against python-statemachine and transitions, measured in one run.

Run: ``.venv/bin/python bench/core.py`` (``--quick`` for a short smoke run). Prints a markdown
table of operations per second (best of N timed rounds after a warm-up, ``perf_counter_ns``).

What one operation is, per case:

* pystator is stateless: one ``machine.process(state, trigger, context)`` call computes one
  transition (it returns the planned actions and timers; nothing is stored).
* The peers are stateful objects: one ``send``/trigger call performs one transition on the
  object. Their machines cycle (e.g. ``FILLED --reset--> PENDING``) so that every call is a real
  transition; python-statemachine refuses transitions out of a final state, so the peers' last
  state is an ordinary one.
* Peers have no inline expression language for comparisons, so the ``expr:`` and ``check:``
  cases run the same Python callable guard as the named-guard case on their side, and the
  declarative-effect case runs a Python callback that changes the same fields on theirs.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import report  # bench/report.py: every run is saved as JSON

ORDER_DICT: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "order_management", "strict_mode": True},
    "states": [
        {"name": "PENDING", "type": "initial"},
        {"name": "OPEN", "type": "stable"},
        {"name": "FILLED", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "exchange_ack", "source": "PENDING", "dest": "OPEN"},
        {"trigger": "fill", "source": "OPEN", "dest": "FILLED"},
    ],
}

FILL_CONTEXT = {"fill_qty": 100, "order_qty": 100}

Op = Callable[[], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One benchmark row: how to build an operation for pystator and for each peer."""

    name: str
    ours: Callable[[], Op]
    statemachine: Callable[[], Op]
    transitions: Callable[[], Op]


# --- timing --------------------------------------------------------------------------------


def measure(op: Op, *, rounds: int, round_seconds: float) -> float:
    """Best operations per second over ``rounds`` timed rounds (after a calibrating warm-up)."""
    n = 1
    while True:  # warm-up and calibrate: grow n until one round takes ~round_seconds
        start = time.perf_counter_ns()
        for _ in range(n):
            op()
        elapsed = time.perf_counter_ns() - start
        if elapsed >= round_seconds * 1e9 / 4 or n >= 1 << 24:
            break
        n *= 2
    n = max(1, int(n * round_seconds * 1e9 / max(elapsed, 1)))
    best = float("inf")
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            start = time.perf_counter_ns()
            for _ in range(n):
                op()
            best = min(best, (time.perf_counter_ns() - start) / n)
    finally:
        if gc_was_enabled:
            gc.enable()
    return 1e9 / best


def cycle(*calls: Op) -> Op:
    """An operation that performs the given calls in turn, one per invocation."""
    state = {"i": 0}
    count = len(calls)

    def op() -> Any:
        i = state["i"]
        state["i"] = i + 1 if i + 1 < count else 0
        return calls[i]()

    return op


# --- pystator --------------------------------------------------------------------------------


def _ours_machine(definition: dict[str, Any]) -> Any:
    from pystator import StateMachine

    return StateMachine.from_dict(definition)


def ours_plain() -> Op:
    machine = _ours_machine(ORDER_DICT)
    process = machine.process
    ctx: dict[str, Any] = {}
    return lambda: process("PENDING", "exchange_ack", ctx)


def _guarded_dict(guard: Any) -> dict[str, Any]:
    definition = {**ORDER_DICT, "transitions": [dict(t) for t in ORDER_DICT["transitions"]]}
    definition["transitions"][1]["guards"] = [guard]
    return definition


def ours_named_guard() -> Op:
    from pystator import GuardRegistry

    machine = _ours_machine(_guarded_dict("is_full_fill"))
    guards = GuardRegistry()
    guards.register("is_full_fill", lambda ctx: ctx["fill_qty"] >= ctx["order_qty"])
    machine.bind_guards(guards)
    process = machine.process
    assert process("OPEN", "fill", FILL_CONTEXT).success
    return lambda: process("OPEN", "fill", FILL_CONTEXT)


def ours_expr_guard() -> Op:
    machine = _ours_machine(_guarded_dict("expr: fill_qty >= order_qty"))
    process = machine.process
    assert process("OPEN", "fill", FILL_CONTEXT).success
    assert not process("OPEN", "fill", {"fill_qty": 1, "order_qty": 2}).success
    return lambda: process("OPEN", "fill", FILL_CONTEXT)


def ours_check_guard() -> Op:
    check = {"check": {"field": "fill_qty", "op": "gte", "value": 100}}
    machine = _ours_machine(_guarded_dict(check))  # type: ignore[arg-type]
    process = machine.process
    assert process("OPEN", "fill", FILL_CONTEXT).success
    assert not process("OPEN", "fill", {"fill_qty": 1}).success
    return lambda: process("OPEN", "fill", FILL_CONTEXT)


def ours_effect() -> Op:
    definition = {**ORDER_DICT, "transitions": [dict(t) for t in ORDER_DICT["transitions"]]}
    definition["transitions"][1]["actions"] = [
        {"increment": "fills"},
        {"set": {"status": "filled"}},
    ]
    machine = _ours_machine(definition)
    process = machine.process
    result = process("OPEN", "fill", FILL_CONTEXT)
    assert result.context == {**FILL_CONTEXT, "fills": 1, "status": "filled"}, result
    return lambda: process("OPEN", "fill", FILL_CONTEXT)


HIERARCHY_DICT: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "hierarchy"},
    "states": [
        {"name": "idle", "type": "initial"},
        {"name": "working", "type": "stable", "initial_child": "a"},
        {"name": "a", "type": "stable", "parent": "working"},
        {"name": "b", "type": "stable", "parent": "working"},
    ],
    "transitions": [
        {"trigger": "start", "source": "idle", "dest": "working"},
        {"trigger": "stop", "source": "working", "dest": "idle"},
        {"trigger": "inner", "source": "a", "dest": "b"},
    ],
}


def ours_hierarchical() -> Op:
    machine = _ours_machine(HIERARCHY_DICT)
    process = machine.process
    ctx: dict[str, Any] = {}
    entered = process("idle", "start", ctx)
    assert entered.target_state == "a", entered
    left = process("a", "stop", ctx)
    assert left.states_exited == ("a", "working"), left
    return cycle(lambda: process("idle", "start", ctx), lambda: process("a", "stop", ctx))


PARALLEL_DICT: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "parallel"},
    "states": [
        {
            "name": "run",
            "type": "parallel",
            "initial": True,
            "regions": [
                {"name": "x", "initial": "x1", "states": ["x1", "x2"]},
                {"name": "y", "initial": "y1", "states": ["y1", "y2"]},
            ],
        },
        *({"name": name, "parent": "run"} for name in ("x1", "x2", "y1", "y2")),
    ],
    "transitions": [
        {"trigger": "go", "source": "x1", "dest": "x2"},
        {"trigger": "back", "source": "x2", "dest": "x1"},
    ],
}


def ours_parallel() -> Op:
    machine = _ours_machine(PARALLEL_DICT)
    process = machine.process
    ctx: dict[str, Any] = {}
    start = machine.get_initial_state()
    forward = process(start, "go", ctx)
    assert forward.success, forward
    moved = forward.target_state
    assert process(moved, "back", ctx).target_state == start
    return cycle(lambda: process(start, "go", ctx), lambda: process(moved, "back", ctx))


CYCLE_DICT: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "cycle"},
    "states": [{"name": "A", "type": "initial"}, {"name": "B", "type": "stable"}],
    "transitions": [
        {"trigger": "go", "source": "A", "dest": "B"},
        {"trigger": "back", "source": "B", "dest": "A"},
    ],
}


def ours_session() -> Op:
    session = _ours_machine(CYCLE_DICT).create(context={"order_id": "1"})
    send = session.send
    return cycle(lambda: send("go"), lambda: send("back"))


def ours_load() -> Op:
    from pystator import StateMachine

    return lambda: StateMachine.from_dict(ORDER_DICT)


# --- python-statemachine ---------------------------------------------------------------------


def psm_plain() -> Op:
    from statemachine import State, StateChart

    class Order(StateChart):
        pending = State(initial=True)
        open = State()
        filled = State()
        exchange_ack = pending.to(open)
        fill = open.to(filled)
        reset = filled.to(pending)

    send = Order().send
    return cycle(lambda: send("exchange_ack"), lambda: send("fill"), lambda: send("reset"))


def psm_guard() -> Op:
    from statemachine import State, StateChart

    class Order(StateChart):
        open = State(initial=True)
        filled = State()
        fill = open.to(filled, cond="is_full_fill")
        reset = filled.to(open)

        def is_full_fill(self, fill_qty: int = 0, order_qty: int = 1) -> bool:
            return fill_qty >= order_qty

    send = Order().send
    return cycle(lambda: send("fill", **FILL_CONTEXT), lambda: send("reset"))


def psm_effect() -> Op:
    from statemachine import State, StateChart

    class Order(StateChart):
        open = State(initial=True)
        filled = State()
        fill = open.to(filled, cond="is_full_fill")
        reset = filled.to(open)

        fills = 0
        status = "open"

        def is_full_fill(self, fill_qty: int = 0, order_qty: int = 1) -> bool:
            return fill_qty >= order_qty

        def on_fill(self) -> None:
            self.fills += 1
            self.status = "filled"

    send = Order().send
    return cycle(lambda: send("fill", **FILL_CONTEXT), lambda: send("reset"))


def psm_hierarchical() -> Op:
    from statemachine import State, StateChart

    class Hierarchy(StateChart):
        idle = State(initial=True)

        class working(State.Compound):
            a = State(initial=True)
            b = State()
            inner = a.to(b)

        start = idle.to(working)
        stop = working.to(idle)

    send = Hierarchy().send
    return cycle(lambda: send("start"), lambda: send("stop"))


def psm_parallel() -> Op:
    from statemachine import State, StateChart

    class Parallel(StateChart):
        class run(State.Parallel):
            class x(State.Compound):
                x1 = State(initial=True)
                x2 = State()
                go = x1.to(x2)
                back = x2.to(x1)

            class y(State.Compound):
                y1 = State(initial=True)
                y2 = State()
                ygo = y1.to(y2)

    send = Parallel().send
    return cycle(lambda: send("go"), lambda: send("back"))


def psm_session() -> Op:
    from statemachine import State, StateChart

    class Cycle(StateChart):
        a = State(initial=True)
        b = State()
        go = a.to(b)
        back = b.to(a)

    send = Cycle().send
    return cycle(lambda: send("go"), lambda: send("back"))


def psm_load() -> Op:
    from statemachine.io import create_machine_class_from_definition

    def load() -> Any:
        cls = create_machine_class_from_definition(
            "Order",
            states={
                "PENDING": {"initial": True, "on": {"exchange_ack": [{"target": "OPEN"}]}},
                "OPEN": {"on": {"fill": [{"target": "FILLED"}]}},
                "FILLED": {"final": True},
            },
        )
        return cls()

    return load


# --- transitions -----------------------------------------------------------------------------


class _Model:
    """A plain model object for the transitions library."""

    def is_full_fill(self, fill_qty: int = 0, order_qty: int = 1) -> bool:
        return fill_qty >= order_qty


def tr_plain() -> Op:
    from transitions import Machine

    model = _Model()
    Machine(
        model=model,
        states=["PENDING", "OPEN", "FILLED"],
        transitions=[
            {"trigger": "exchange_ack", "source": "PENDING", "dest": "OPEN"},
            {"trigger": "fill", "source": "OPEN", "dest": "FILLED"},
            {"trigger": "reset", "source": "FILLED", "dest": "PENDING"},
        ],
        initial="PENDING",
        auto_transitions=False,
    )
    trigger = model.trigger  # type: ignore[attr-defined]
    return cycle(lambda: trigger("exchange_ack"), lambda: trigger("fill"), lambda: trigger("reset"))


def tr_guard() -> Op:
    from transitions import Machine

    model = _Model()
    Machine(
        model=model,
        states=["OPEN", "FILLED"],
        transitions=[
            {"trigger": "fill", "source": "OPEN", "dest": "FILLED", "conditions": "is_full_fill"},
            {"trigger": "reset", "source": "FILLED", "dest": "OPEN"},
        ],
        initial="OPEN",
        auto_transitions=False,
    )
    trigger = model.trigger  # type: ignore[attr-defined]
    return cycle(lambda: trigger("fill", **FILL_CONTEXT), lambda: trigger("reset"))


class _CountingModel(_Model):
    """A model with a callback that changes two fields (the effect case)."""

    fills = 0
    status = "open"

    def record_fill(self, **_context: Any) -> None:
        self.fills += 1
        self.status = "filled"


def tr_effect() -> Op:
    from transitions import Machine

    model = _CountingModel()
    Machine(
        model=model,
        states=["OPEN", "FILLED"],
        transitions=[
            {
                "trigger": "fill",
                "source": "OPEN",
                "dest": "FILLED",
                "conditions": "is_full_fill",
                "after": "record_fill",
            },
            {"trigger": "reset", "source": "FILLED", "dest": "OPEN"},
        ],
        initial="OPEN",
        auto_transitions=False,
    )
    trigger = model.trigger  # type: ignore[attr-defined]
    return cycle(lambda: trigger("fill", **FILL_CONTEXT), lambda: trigger("reset"))


def tr_hierarchical() -> Op:
    from transitions.extensions import HierarchicalMachine

    model = _Model()
    HierarchicalMachine(
        model=model,
        states=["idle", {"name": "working", "children": ["a", "b"], "initial": "a"}],
        transitions=[
            ["start", "idle", "working"],
            ["stop", "working", "idle"],
            ["inner", "working_a", "working_b"],
        ],
        initial="idle",
        auto_transitions=False,
    )
    trigger = model.trigger  # type: ignore[attr-defined]
    return cycle(lambda: trigger("start"), lambda: trigger("stop"))


def tr_parallel() -> Op:
    from transitions.extensions import HierarchicalMachine

    model = _Model()
    HierarchicalMachine(
        model=model,
        states=[
            {
                "name": "run",
                "parallel": [
                    {"name": "x", "children": ["x1", "x2"], "initial": "x1"},
                    {"name": "y", "children": ["y1", "y2"], "initial": "y1"},
                ],
            }
        ],
        transitions=[["go", "run_x_x1", "run_x_x2"], ["back", "run_x_x2", "run_x_x1"]],
        initial="run",
        auto_transitions=False,
    )
    trigger = model.trigger  # type: ignore[attr-defined]
    return cycle(lambda: trigger("go"), lambda: trigger("back"))


def tr_session() -> Op:
    from transitions import Machine

    model = _Model()
    Machine(
        model=model,
        states=["A", "B"],
        transitions=[["go", "A", "B"], ["back", "B", "A"]],
        initial="A",
        auto_transitions=False,
    )
    trigger = model.trigger  # type: ignore[attr-defined]
    return cycle(lambda: trigger("go"), lambda: trigger("back"))


def tr_load() -> Op:
    from transitions import Machine

    def load() -> Any:
        return Machine(
            model=_Model(),
            states=["PENDING", "OPEN", "FILLED"],
            transitions=[
                {"trigger": "exchange_ack", "source": "PENDING", "dest": "OPEN"},
                {"trigger": "fill", "source": "OPEN", "dest": "FILLED"},
            ],
            initial="PENDING",
            auto_transitions=False,
        )

    return load


CASES = (
    Case(name="process (README order machine)", ours=ours_plain, statemachine=psm_plain, transitions=tr_plain),
    Case(name="process + named guard", ours=ours_named_guard, statemachine=psm_guard, transitions=tr_guard),
    Case(name="process + `expr:` guard", ours=ours_expr_guard, statemachine=psm_guard, transitions=tr_guard),
    Case(name="process + `check:` guard", ours=ours_check_guard, statemachine=psm_guard, transitions=tr_guard),
    Case(name="process + effects (`increment`, `set`)", ours=ours_effect, statemachine=psm_effect, transitions=tr_effect),
    Case(name="hierarchical (exit child+parent / enter)", ours=ours_hierarchical, statemachine=psm_hierarchical, transitions=tr_hierarchical),
    Case(name="parallel region transition", ours=ours_parallel, statemachine=psm_parallel, transitions=tr_parallel),
    Case(name="EntitySession.send", ours=ours_session, statemachine=psm_session, transitions=tr_session),
    Case(name="load machine (from_dict)", ours=ours_load, statemachine=psm_load, transitions=tr_load),
)  # fmt: skip


def _fmt(ops: float | None) -> str:
    if ops is None:
        return "n/a"
    return f"{ops:,.0f}"


def _ratio(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None:
        return "n/a"
    return f"{ours / peer:,.1f}x"


def _run(factory: Callable[[], Op], rounds: int, seconds: float) -> float | None:
    try:
        op = factory()
        op()
    except Exception as exc:  # reported in the table as n/a, with the reason on stderr
        print(f"  {factory.__name__}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    return measure(op, rounds=rounds, round_seconds=seconds)


def main(argv: list[str] | None = None) -> int:
    """Run every case and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short rounds (smoke run)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per measurement")
    args = parser.parse_args(argv)
    rounds, seconds = (2, 0.02) if args.quick else (args.rounds, 0.2)

    print(
        f"pystator {version('pystator')} · python-statemachine {version('python-statemachine')}"
        f" · transitions {version('transitions')} · Python {platform.python_version()}"
        f" · {platform.machine()}, best of {rounds} rounds, operations/second\n"
    )
    print("| case | pystator | python-statemachine | ratio | transitions | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for case in CASES:
        ours = _run(case.ours, rounds, seconds)
        psm = _run(case.statemachine, rounds, seconds)
        tr = _run(case.transitions, rounds, seconds)
        print(
            f"| {case.name} | {_fmt(ours)} | {_fmt(psm)} | {_ratio(ours, psm)} "
            f"| {_fmt(tr)} | {_ratio(ours, tr)} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    with report.recorded("core") as run:
        run.exit_code = main()
    sys.exit(run.exit_code)
