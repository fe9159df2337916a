"""Bad definitions: every problem is reported at once, each with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pystator import MachineValidationError, StateMachine


def problems(definition: Any) -> list[str]:
    with pytest.raises(MachineValidationError) as caught:
        StateMachine.from_dict(definition)
    return [str(p) for p in caught.value.problems]


def base(**changes: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "meta": {"machine_name": "m"},
        "states": [
            {"name": "A", "type": "initial"},
            {"name": "B"},
            {"name": "Z", "type": "terminal"},
        ],
        "transitions": [
            {"trigger": "go", "source": "A", "dest": "B"},
            {"trigger": "end", "source": "B", "dest": "Z"},
        ],
    }
    definition.update(changes)
    return definition


def test_every_problem_is_listed_with_its_path() -> None:
    found = problems(
        base(
            transitions=[
                {"trigger": "go", "source": "A", "dest": "FILED"},
                {"trigger": "back", "source": "Z", "dest": "A"},
                {"trigger": "wait", "source": "B", "dest": "Z", "after": "soon"},
                {"trigger": 7, "source": "NOWHERE", "dest": "A"},
            ]
        )
    )
    joined = "\n".join(found)
    assert "transitions[0].dest: unknown state 'FILED'" in joined
    assert "transitions[1].source: transition out of terminal state 'Z'" in joined
    assert "transitions[2].after: invalid delay 'soon'" in joined
    assert "transitions[3].trigger: a trigger must be a string, got int" in joined
    assert len(found) >= 4


def test_two_initial_states_and_none() -> None:
    two = base(states=[{"name": "A", "type": "initial"}, {"name": "B", "type": "initial"}])
    two["transitions"] = []
    assert any("more than one initial state" in p for p in problems(two))
    none = base(states=[{"name": "A"}], transitions=[])
    assert any("no initial state" in p for p in problems(none))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"states": [{"name": "A", "type": "initial", "parent": "Q"}]}, "unknown parent state 'Q'"),
        ({"states": [{"name": "A", "type": "initial"}, {"name": "A"}]}, "duplicate state name 'A'"),
        ({"states": [{"name": "A", "type": "weird"}]}, "unknown state type 'weird'"),
        ({"states": "A"}, "states: must be a list of states, got str"),
        ({"meta": {"machine_name": "m", "strict_mod": 1}}, "did you mean 'strict_mode'"),
        ({"meta": {"machine_name": "bad name"}}, "invalid machine name 'bad name'"),
        ({"transitions": {"go": 1}}, "transitions: must be a list"),
        (
            {"states": [{"name": "A", "type": "initial", "children": [{"name": "c"}]}]},
            "compound state 'A' needs one initial child",
        ),
        (
            {
                "states": [
                    {"name": "A", "type": "initial"},
                    {"name": "P", "type": "parallel", "regions": [{"name": "r", "states": []}]},
                ]
            },
            "region 'r' has no states",
        ),
        (
            {
                "states": [
                    {"name": "A", "type": "initial"},
                    {
                        "name": "P",
                        "type": "parallel",
                        "regions": [{"name": "r", "initial": "q", "states": [{"name": "s"}]}],
                    },
                ]
            },
            "'q' is not a state of region 'r'",
        ),
        (
            {"states": [{"name": "A", "type": "initial", "regions": []}]},
            "only a state of type 'parallel'",
        ),
        ({"states": [{"name": "bad name", "type": "initial"}]}, "invalid state name 'bad name'"),
    ],
)
def test_single_mistakes_are_named(change: dict[str, Any], expected: str) -> None:
    definition = base(**change)
    if "states" in change:
        definition["transitions"] = []
    found = problems(definition)
    assert any(expected in p for p in found), found


def test_expression_guards_are_checked_at_load() -> None:
    found = problems(
        base(
            transitions=[
                {"trigger": "go", "source": "A", "dest": "B", "guards": ["expr: __import__('os')"]}
            ]
        )
    )
    assert any(p.startswith("transitions[0].guards[0]: invalid guard expression") for p in found)


def test_unreachable_duplicate_transition() -> None:
    found = problems(
        base(
            transitions=[
                {"trigger": "go", "source": "A", "dest": "B"},
                {"trigger": "go", "source": "A", "dest": "Z"},
            ]
        )
    )
    assert any("unreachable" in p and "transitions[1]" in p for p in found)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("meta:\n  machine_name: x\nstates: [unclosed\n")
    with pytest.raises(MachineValidationError) as caught:
        StateMachine.from_yaml(path)
    assert "YAML syntax error at line" in str(caught.value)
    assert str(path) in str(caught.value)


def test_not_a_mapping_and_json_errors() -> None:
    assert problems(["a"]) == ["a machine definition must be a mapping, got list"]
    with pytest.raises(MachineValidationError, match="JSON syntax error"):
        StateMachine.from_json("{")


def test_unknown_keys_are_errors_whatever_strict_mode_says() -> None:
    definition = base(meta={"machine_name": "m", "strict_mode": False, "owner": "team"})
    definition["states"][0]["colour"] = "red"
    assert problems(definition) == [
        "states[0].colour: unknown key (known: children, description, group, initial, "
        "initial_child, invoke, metadata, name, on_enter, on_exit, parent, regions, states, "
        "timeout, type, when)"
    ]
    del definition["states"][0]["colour"]  # extra meta keys (tooling data) are fine
    assert StateMachine.from_dict(definition).meta["owner"] == "team"


def test_delay_forms() -> None:
    from pystator.fsm_core.delays import DelayError, parse_delay

    assert [parse_delay(v) for v in (5000, "5000", "500ms", "5s", "1.5s", "10m", "1h", "1d")] == [
        5000,
        5000,
        500,
        5000,
        1500,
        600_000,
        3_600_000,
        86_400_000,
    ]
    for bad in (-1, "5 weeks", True, None, "", "1e3s", float("nan")):
        with pytest.raises(DelayError):
            parse_delay(bad)
