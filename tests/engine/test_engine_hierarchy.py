"""Compound and parallel states: LCA exit/enter order, actions, timers, configurations."""

from __future__ import annotations

from typing import Any

import pytest

from pystator import (
    InvalidStateError,
    ParallelConfiguration,
    StateMachine,
    UndefinedStateError,
)

HIERARCHY: dict[str, Any] = {
    "meta": {"machine_name": "h"},
    "states": [
        {"name": "idle", "type": "initial", "on_exit": ["leave_idle"]},
        {
            "name": "working",
            "initial_child": "a",
            "on_enter": ["enter_working"],
            "on_exit": ["exit_working"],
            "children": [
                {"name": "a", "on_enter": ["enter_a"], "on_exit": ["exit_a"]},
                {"name": "b", "on_enter": [{"name": "enter_b", "params": {"n": 1}}]},
            ],
        },
        {"name": "done", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "start", "source": "idle", "dest": "working", "actions": ["t_start"]},
        {"trigger": "stop", "source": "working", "dest": "idle"},
        {"trigger": "inner", "source": "a", "dest": "b", "after": "5s"},
        {"trigger": "again", "source": "b", "dest": "b"},
        {"trigger": "note", "source": "b", "dest": "b", "internal": True, "actions": ["log"]},
        {"trigger": "finish", "source": "working", "dest": "done"},
    ],
}


def names(calls: Any) -> list[str]:
    return [c.name for c in calls]


def test_entering_a_compound_state_lands_on_its_initial_leaf() -> None:
    m = StateMachine.from_dict(HIERARCHY)
    r = m.process("idle", "start")
    assert r.success and r.target_state == "a"
    assert r.states_exited == ("idle",)
    assert r.states_entered == ("working", "a")
    assert r.all_actions == ("leave_idle", "t_start", "enter_working", "enter_a")


def test_a_parent_transition_applies_to_its_children_and_exits_leaf_first() -> None:
    m = StateMachine.from_dict(HIERARCHY)
    r = m.process("b", "stop")
    assert r.target_state == "idle"
    assert r.states_exited == ("b", "working")
    assert r.all_actions == ("exit_working",)


def test_sibling_transition_stays_inside_the_parent() -> None:
    m = StateMachine.from_dict(HIERARCHY)
    r = m.process("a", "inner")
    assert r.states_exited == ("a",) and r.states_entered == ("b",)
    assert r.all_actions == ("exit_a", "enter_b")
    assert dict(r.enter_actions[0].params) == {"n": 1}
    assert r.enter_actions[0].state == "b"


def test_self_transition_is_external_and_internal_one_is_not() -> None:
    m = StateMachine.from_dict(HIERARCHY)
    external = m.process("b", "again")
    assert external.states_exited == ("b",) and external.states_entered == ("b",)
    internal = m.process("b", "note")
    assert internal.states_exited == () and internal.states_entered == ()
    assert internal.all_actions == ("log",) and internal.target_state == "b"


def test_after_timers_are_armed_on_entry_and_cancelled_on_exit() -> None:
    m = StateMachine.from_dict(HIERARCHY)
    armed = m.process("idle", "start").timers_to_arm
    assert [(t.state, t.trigger, t.delay_ms) for t in armed] == [("a", "inner", 5000)]
    cancelled = m.process("a", "stop").timers_to_cancel
    assert [t.key for t in cancelled] == [armed[0].key]
    assert m.timers_for_state("a") == armed


def test_state_timeout_becomes_a_timer_and_a_transition() -> None:
    m = StateMachine.from_dict(
        {
            "meta": {"machine_name": "t"},
            "states": [
                {"name": "new", "type": "initial"},
                {"name": "wait", "timeout": {"after": "10m", "destination": "expired"}},
                {"name": "expired", "type": "terminal"},
            ],
            "transitions": [{"trigger": "go", "source": "new", "dest": "wait"}],
        }
    )
    (timer,) = m.process("new", "go").timers_to_arm
    assert timer.delay_ms == 600_000 and timer.trigger == "timeout"
    assert m.process("wait", "timeout").target_state == "expired"
    assert m.has_trigger("timeout")


PARALLEL: dict[str, Any] = {
    "meta": {"machine_name": "p"},
    "states": [
        {"name": "off", "type": "initial"},
        {
            "name": "run",
            "type": "parallel",
            "on_exit": ["stop_run"],
            "regions": [
                {"name": "x", "initial": "x1", "states": [{"name": "x1"}, {"name": "x2"}]},
                {
                    "name": "y",
                    "initial": "y1",
                    "states": [{"name": "y1", "on_exit": ["exit_y1"]}, {"name": "y2"}],
                },
            ],
        },
        {"name": "end", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "on", "source": "off", "dest": "run"},
        {"trigger": "go", "source": "x1", "dest": "x2"},
        {"trigger": "go", "source": "y1", "dest": "y2"},
        {"trigger": "jump", "source": "x1", "dest": "y2"},
        {"trigger": "halt", "source": "run", "dest": "end"},
        {"trigger": "deep", "source": "off", "dest": "x2"},
    ],
}


def test_entering_a_parallel_state_enters_every_region() -> None:
    m = StateMachine.from_dict(PARALLEL)
    r = m.process("off", "on")
    assert r.target_state == "run[x=x1,y=y1]"
    assert r.states_entered == ("run", "x1", "y1")


def test_one_event_moves_every_region_that_accepts_it() -> None:
    m = StateMachine.from_dict(PARALLEL)
    r = m.process("run[x=x1,y=y1]", "go")
    assert r.target_state == "run[x=x2,y=y2]"
    assert set(r.states_exited) == {"x1", "y1"} and r.all_actions == ("exit_y1",)
    again = m.process("run[x=x2,y=y1]", "go")
    assert again.target_state == "run[x=x2,y=y2]"


def test_leaving_the_parallel_state_exits_all_regions() -> None:
    m = StateMachine.from_dict(PARALLEL)
    r = m.process("run[x=x2,y=y1]", "halt")
    assert r.target_state == "end"
    assert r.states_exited[-1] == "run" and set(r.states_exited[:2]) == {"x2", "y1"}
    assert r.all_actions == ("exit_y1", "stop_run")


def test_cross_region_and_deep_entry_complete_the_other_regions() -> None:
    m = StateMachine.from_dict(PARALLEL)
    assert m.process("run[x=x1,y=y1]", "jump").target_state == "run[x=x1,y=y2]"
    deep = m.process("off", "deep")
    assert deep.target_state == "run[x=x2,y=y1]"
    assert deep.states_entered == ("run", "x2", "y1")


def test_parallel_api_and_configuration_round_trip() -> None:
    m = StateMachine.from_dict(PARALLEL)
    config = m.enter_parallel_state("run")
    assert isinstance(config, ParallelConfiguration)
    assert config.encoded == "run[x=x1,y=y1]" and config.active == {"x": "x1", "y": "y1"}
    new, results = m.process_parallel(config, "go")
    assert str(new) == "run[x=x2,y=y2]" and results[0].success
    final, _ = m.process_parallel(new, "halt")
    assert final == "end"
    rejected, results = m.process_parallel(new, "nothing")
    assert rejected is new and not results[0].success


def test_exit_actions_of_a_parallel_configuration_match_leaving_it() -> None:
    m = StateMachine.from_dict(PARALLEL)
    config = m.enter_parallel_state("run")
    exits = m.get_parallel_exit_actions(config)
    assert tuple(call.name for call in exits) == ("exit_y1", "stop_run")
    assert exits == m.process(config.encoded, "halt").exit_actions
    moved, _ = m.process_parallel(config, "go")
    assert tuple(call.name for call in m.get_parallel_exit_actions(moved)) == ("stop_run",)


@pytest.mark.parametrize(
    "config", ["x1", "off", "run[x=x1]", "run[x=y1,y=y1]", "nowhere[x=x1,y=y1]", "run[x=x1,y=y1"]
)
def test_validate_parallel_config_refuses_what_is_not_one(config: str) -> None:
    m = StateMachine.from_dict(PARALLEL)
    with pytest.raises((InvalidStateError, UndefinedStateError)):
        m.validate_parallel_config(config)
    with pytest.raises((InvalidStateError, UndefinedStateError)):
        m.get_parallel_exit_actions(config)


def test_validate_parallel_config_accepts_every_reachable_configuration() -> None:
    m = StateMachine.from_dict(PARALLEL)
    for config in ("run[x=x1,y=y1]", "run[x=x2,y=y2]", m.enter_parallel_state("run")):
        m.validate_parallel_config(config)


@pytest.mark.parametrize(
    ("state", "error"),
    [
        ("x1", InvalidStateError),  # a region's state alone is not a configuration
        ("run[x=x1]", InvalidStateError),
        ("run[y=y1,x=x1]", InvalidStateError),
        ("run[x=y1,y=y1]", InvalidStateError),
        ("run[x=x1,y=y1", UndefinedStateError),
        ("nowhere[x=x1,y=y1]", UndefinedStateError),
    ],
)
def test_bad_configurations_are_refused(state: str, error: type[Exception]) -> None:
    m = StateMachine.from_dict(PARALLEL)
    with pytest.raises(error):
        m.process(state, "go")


def test_parallel_initial_state_and_queries() -> None:
    definition = {**PARALLEL, "states": [dict(PARALLEL["states"][1], initial=True)]}
    definition["transitions"] = [PARALLEL["transitions"][1], PARALLEL["transitions"][2]]
    m = StateMachine.from_dict(definition)
    assert m.get_initial_state() == "run[x=x1,y=y1]"
    assert [t.trigger for t in m.get_available_transitions("run[x=x1,y=y1]")] == ["go", "go"]
    assert m.active_states("run[x=x1,y=y2]") == {"run", "x1", "y2"}
