"""The seed README's and the reference's spellings: keyword names, ``event``/``trigger``,
per-region ``process_parallel`` with its combined view, the built-in hooks' four methods."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pystator import (
    InMemoryStateStore,
    LoggingHook,
    MetricsCollector,
    Orchestrator,
    StateMachine,
    StructuredLoggingHook,
    TransitionHook,
)

PARALLEL: dict[str, Any] = {
    "meta": {"machine_name": "plant"},
    "states": [
        {"name": "idle", "type": "initial"},
        {
            "name": "RUN",
            "type": "parallel",
            "regions": [
                {
                    "name": "motor",
                    "initial": "OFF",
                    "states": [{"name": "OFF", "on_exit": ["motor_leaving_off"]}, {"name": "ON"}],
                },
                {"name": "light", "initial": "DARK", "states": [{"name": "DARK"}, {"name": "LIT"}]},
            ],
        },
        {"name": "done", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "go", "source": "idle", "dest": "RUN"},
        {"trigger": "start", "source": "OFF", "dest": "ON", "actions": ["spin"]},
        {"trigger": "start", "source": "DARK", "dest": "LIT", "actions": ["glow"]},
        {"trigger": "flip", "source": "DARK", "dest": "LIT"},
        {"trigger": "stop", "source": "RUN", "dest": "done"},
    ],
}


@pytest.fixture
def plant() -> StateMachine:
    return StateMachine.from_dict(PARALLEL)


def test_process_parallel_returns_one_result_per_region_that_moved(plant: StateMachine) -> None:
    config = plant.enter_parallel_state(parallel_state_name="RUN")
    new, results = plant.process_parallel(config=config, trigger="start", context={})
    assert str(new) == "RUN[motor=ON,light=LIT]"
    assert [(r.source_state, r.target_state, r.all_actions) for r in results] == [
        ("RUN[motor=OFF,light=DARK]", "RUN[motor=ON,light=DARK]", ("motor_leaving_off", "spin")),
        ("RUN[motor=OFF,light=DARK]", "RUN[motor=OFF,light=LIT]", ("glow",)),
    ]
    _, combined = plant.process_parallel_combined(config, "start", {})
    assert combined.target_state == "RUN[motor=ON,light=LIT]"
    assert combined.all_actions == ("motor_leaving_off", "spin", "glow")


def test_one_region_leaving_or_a_rejection_is_one_result(plant: StateMachine) -> None:
    config = plant.enter_parallel_state("RUN")
    new, results = plant.process_parallel(config, "flip", {})
    assert str(new) == "RUN[motor=OFF,light=LIT]" and len(results) == 1
    left, results = plant.process_parallel(config, "stop", {})
    assert left == "done" and [r.target_state for r in results] == ["done"]
    same, results = plant.process_parallel(config, "nothing", {})
    assert same is config and len(results) == 1 and not results[0].success


def test_event_is_accepted_for_trigger(plant: StateMachine) -> None:
    config = plant.enter_parallel_state("RUN")
    new, _ = plant.process_parallel(config, event="start", context={})
    assert str(new) == "RUN[motor=ON,light=LIT]"
    anew, aresults = asyncio.run(plant.aprocess_parallel(config, event="start"))
    assert str(anew) == str(new) and len(aresults) == 2
    with pytest.raises(TypeError, match="trigger"):
        plant.process_parallel(config, "start", event="start")
    with pytest.raises(TypeError, match="trigger"):
        plant.process_parallel(config)


def test_documented_keyword_names(plant: StateMachine, tmp_path: Any) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("meta: {machine_name: m}\nstates: [{name: a, type: initial}]\n")
    assert StateMachine.from_yaml(path=path).name == "m"
    assert [t.trigger for t in plant.get_available_transitions(state_name="idle")] == ["go"]
    assert plant.enter_parallel_state("RUN").is_in_state(state_name="OFF")
    from pystator import GuardRegistry

    guards = GuardRegistry()
    plant.bind_guards(guards=guards)
    assert plant.guard_registry is guards


def test_the_builtin_hooks_implement_the_four_methods() -> None:
    methods = ("on_before_process", "on_transition_start", "on_transition_complete")
    for hook in (LoggingHook(), StructuredLoggingHook(), MetricsCollector()):
        assert isinstance(hook, TransitionHook)
        assert all(callable(getattr(hook, m, None)) for m in (*methods, "on_transition_error"))


def test_metrics_collector_counts_once_under_the_orchestrator() -> None:
    machine = StateMachine.from_dict(PARALLEL)
    metrics = MetricsCollector()
    orchestrator = Orchestrator(machine, InMemoryStateStore(), hooks=[metrics])
    orchestrator.process_event("p-1", "go", {})
    summary = metrics.get_summary()
    assert (summary["total_transitions"], summary["successful"]) == (1, 1)
