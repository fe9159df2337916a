"""``StateMachineBuilder``: the same definitions in Python; ``to_dict`` round-trips."""

from __future__ import annotations

import pytest

from pystator import GuardRegistry, MachineValidationError, StateMachine, StateMachineBuilder
from tests.support.declarative_machines import PARALLEL_NAMES_YAML, TICKET_YAML, decl_order, load


def kettle() -> StateMachineBuilder:
    return (
        StateMachineBuilder("kettle", version="2.0", description="Boils water")
        .group("heating", "Power on")
        .state_variable("litres", "number", required=True, default=1.0)
        .state_variable("brand")
        .invariant("sane_volume", {"field": "litres", "op": "lte", "value": 2})
        .event("press", description="The button", payload={"who": "string"})
        .error_policy(default_fallback="off", retry_attempts=1)
        .meta(orchestrator_default_fallback="hint", validate_context=True)
        .initial("off")
        .state(
            "on",
            group="heating",
            initial_child="heating_up",
            on_enter=["lamp_on", {"set": {"lamp": True}}],
        )
        .state("heating_up", parent="on", timeout={"seconds": 240, "destination": "boiled"})
        .state("keep_warm", parent="on")
        .state("check", "choice")
        .terminal("boiled", on_enter=[{"timestamp": "boiled_at"}])
        .transition(
            "press", "off", "on", guards=[{"check": {"field": "litres", "op": "gt", "value": 0}}]
        )
        .transition("hold", "heating_up", "keep_warm")
        .transition("tap", ["heating_up", "keep_warm"], "check", actions=[{"increment": "taps"}])
        .transition(None, "check", "boiled", guards=["expr: taps >= 2"])
        .transition(None, "check", "keep_warm")
        .transition("cancel", "*", "off")
    )


def test_a_built_machine_runs_like_a_loaded_one() -> None:
    machine = kettle().build()
    same = StateMachine.from_dict(kettle().to_dict())
    for m in (machine, same):
        on = m.process("off", "press", {"litres": 1.5})
        assert (on.target_state, on.all_actions, on.context) == (
            "heating_up",
            ("lamp_on",),
            {"litres": 1.5, "lamp": True},
        )
        # branch guards see the context before the incoming transition's effects
        assert m.process("heating_up", "tap", {"litres": 1, "taps": 2}).target_state == "boiled"
        assert m.process("heating_up", "tap", {"litres": 1}).target_state == "keep_warm"
        assert m.process("off", "press", {"litres": 3}).metadata["reason"] == "context_validation"
    assert machine.name == "kettle" and machine.version == "2.0"
    assert machine.error_policy.default_fallback == "off"


def test_to_dict_writes_the_documented_sections_in_order() -> None:
    doc = kettle().to_dict()
    assert list(doc) == [
        "meta",
        "groups",
        "error_policy",
        "state_variables",
        "context_invariants",
        "events",
        "states",
        "transitions",
    ]
    assert doc["meta"] == {
        "machine_name": "kettle",
        "version": "2.0",
        "description": "Boils water",
        "orchestrator_default_fallback": "hint",
        "validate_context": True,
    }
    assert doc["state_variables"][0] == {
        "key": "litres",
        "type": "number",
        "required": True,
        "default": 1.0,
    }
    assert doc["transitions"][3] == {
        "source": "check",
        "dest": "boiled",
        "guards": ["expr: taps >= 2"],
    }
    assert doc["states"][4] == {"name": "check", "type": "choice"}


@pytest.mark.parametrize(
    "doc",
    [load(TICKET_YAML), load(PARALLEL_NAMES_YAML), decl_order()],
    ids=["ticket", "parallel", "order"],
)
def test_from_dict_to_dict_round_trips(doc: dict[str, object]) -> None:
    builder = StateMachineBuilder.from_dict(doc)
    assert builder.to_dict() == doc
    assert StateMachine.from_dict(builder.to_dict()).states == StateMachine.from_dict(doc).states
    assert StateMachineBuilder.from_dict(kettle().to_dict()).to_dict() == kettle().to_dict()


def test_parallel_and_regions_helpers_and_extension() -> None:
    builder = (
        StateMachineBuilder("lamp")
        .initial("off")
        .parallel(
            "lit",
            [
                StateMachineBuilder.region("colour", "warm", ["warm", "cold"]),
                StateMachineBuilder.region(
                    "level", "dim", ["dim", "bright"], description="Brightness"
                ),
            ],
        )
        .state("warm", parent="lit")
        .state("cold", parent="lit")
        .state("dim", parent="lit")
        .state("bright", parent="lit")
        .transition("switch", "off", "lit")
        .transition("turn_up", "dim", "bright", region="level")
    )
    m = builder.build()
    assert m.process("off", "switch").target_state == "lit[colour=warm,level=dim]"
    extended = StateMachineBuilder.from_dict(builder.to_dict()).transition(
        "turn_down", "bright", "dim", region="level"
    )
    assert (
        extended.build().process("lit[colour=cold,level=bright]", "turn_down").target_state
        == "lit[colour=cold,level=dim]"
    )


def test_build_validates_and_binds_registries() -> None:
    guards = GuardRegistry()
    guards.register("ready", lambda ctx: True)
    m = (
        StateMachineBuilder("g")
        .initial("a")
        .state("b")
        .transition("go", "a", "b", guards=["ready"])
        .build(guards=guards)
    )
    assert m.process("a", "go").success
    with pytest.raises(MachineValidationError, match="unknown state 'c'"):
        StateMachineBuilder("g").initial("a").transition("go", "a", "c").build()
    with pytest.raises(TypeError, match="unexpected keyword"):
        StateMachineBuilder().state_variable("x", colour="red")
