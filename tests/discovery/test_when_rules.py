"""State ``when`` rules and ``meta.classification`` in the engine: every operator, every composite,
first match wins, the default state, and located validation messages."""

from __future__ import annotations

from typing import Any

import pytest

from pystator import StateMachine
from pystator.checks import CheckError, CheckSpec, evaluate_check
from pystator.fsm_core.classification import ClassificationRules, StateRule, classify
from pystator.fsm_core.loading import check_definition
from pystator.fsm_core.when import ClassificationSettings, WhenCheck


def machine_doc(*states: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A machine whose first state is initial and which can reach every state."""
    names = [s["name"] for s in states]
    listed = [{"type": "initial" if i == 0 else "stable", **s} for i, s in enumerate(states)]
    return {
        "meta": {"machine_name": "rules", **(meta or {})},
        "states": listed,
        "transitions": [{"trigger": f"to_{n}", "source": "*", "dest": n} for n in names],
    }


def problems(doc: dict[str, Any]) -> list[str]:
    _definition, found, _warnings = check_definition(doc)
    return [str(p) for p in found]


# --- operators -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "record", "expected"),
    [
        ({"field": "msg", "op": "contains", "value": "err"}, {"msg": "an error"}, True),
        ({"field": "msg", "op": "contains", "value": "err"}, {"msg": "fine"}, False),
        ({"field": "tags", "op": "contains", "value": "hot"}, {"tags": ["cold", "hot"]}, True),
        ({"field": "tags", "op": "contains", "value": "ho"}, {"tags": ["cold", "hot"]}, False),
        ({"field": "msg", "op": "contains", "value": "1"}, {"msg": 10}, False),  # not a string
        ({"field": "msg", "op": "contains", "value": "x"}, {}, False),
        ({"field": "code", "op": "starts_with", "value": "ERR"}, {"code": "ERR42"}, True),
        ({"field": "code", "op": "starts_with", "value": "ERR"}, {"code": "E42"}, False),
        ({"field": "code", "op": "starts_with", "value": "1"}, {"code": 12}, False),
        ({"field": "file", "op": "ends_with", "value": ".csv"}, {"file": "a.csv"}, True),
        ({"field": "file", "op": "ends_with", "value": ".csv"}, {"file": "a.csv.gz"}, False),
        ({"field": "file", "op": "ends_with", "value": ".csv"}, {"file": None}, False),
        ({"field": "msg", "op": "matches", "value": "^FATAL"}, {"msg": "FATAL: disk"}, True),
        ({"field": "msg", "op": "matches", "value": "^FATAL"}, {"msg": "not FATAL"}, False),
        ({"field": "msg", "op": "matches", "value": r"disk \d+"}, {"msg": "x disk 3 y"}, True),
        ({"field": "msg", "op": "matches", "value": "1"}, {"msg": 1}, False),
    ],
)
def test_string_operators(check: dict[str, Any], record: dict[str, Any], expected: bool) -> None:
    assert evaluate_check(check, record) is expected


def test_the_documented_table_of_operators_classifies_records() -> None:
    """One state per documented operator; each record lands in the state its field selects."""
    rows = [
        ("eq", {"value": "active"}, "active", "idle"),
        ("neq", {"value": "disabled"}, "enabled", "disabled"),
        ("gt", {"value": 100}, 101, 100),
        ("gte", {"value": 20}, 20, 19),
        ("lt", {"value": 50}, 49, 50),
        ("lte", {"value": 100}, 100, 101),
        ("in", {"values": ["off", "shutdown"]}, "off", "on"),
        ("not_in", {"values": ["US", "EU"]}, "JP", "EU"),
        ("is_set", {}, 0, None),
        ("is_null", {}, None, 0),
        ("contains", {"value": "error"}, "an error", "fine"),
        ("starts_with", {"value": "ERR"}, "ERR1", "OK1"),
        ("ends_with", {"value": ".csv"}, "a.csv", "a.txt"),
        ("matches", {"value": "^FATAL"}, "FATAL x", "x FATAL"),
    ]
    states = [
        {"name": f"s_{op}", "when": [{"field": f"f_{op}", "op": op, **extra}]}
        for op, extra, _hit, _miss in rows
    ]
    machine = StateMachine.from_dict(machine_doc(*states))
    for op, _extra, hit, _miss in rows:
        # every other field gets its own "miss" value, so only this state can match
        base = {f"f_{o}": m for o, _e, _h, m in rows}
        assert machine.classify({**base, f"f_{op}": hit}) == f"s_{op}", op
        assert machine.classify(base) is None, op


@pytest.mark.parametrize(
    ("check", "key", "message"),
    [
        ({"field": "m", "op": "matches", "value": "(("}, "value", "invalid regular expression"),
        ({"field": "m", "op": "contains", "value": 3}, "value", "needs a string 'value'"),
        ({"field": "m", "op": "starts_with"}, "value", "needs 'value'"),
        ({"field": "m", "op": "ends_with", "values": ["a"]}, "values", "not 'values'"),
        ({"field": "m", "op": "around", "value": 1}, "op", "unknown operator 'around'"),
    ],
)
def test_bad_string_checks_name_their_key(check: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(CheckError) as caught:
        evaluate_check(check, {})
    assert caught.value.key == key
    assert message in caught.value.message


def test_a_check_built_directly_compiles_its_predicate() -> None:
    spec = CheckSpec(field="temp", op="gt", value=100)
    assert spec.predicate({"temp": 150}) is True
    assert spec.predicate({"temp": 50}) is False
    assert CheckSpec("tags", "in", values=["a"]).values == ("a",)
    with pytest.raises(CheckError):
        CheckSpec(field="temp", op="bigger", value=1)
    with pytest.raises(CheckError):
        CheckSpec(field="msg", op="matches", value="[unclosed")


def test_string_operators_work_as_guards_too() -> None:
    doc = machine_doc({"name": "a"}, {"name": "b"})
    doc["transitions"] = [
        {
            "trigger": "go",
            "source": "a",
            "dest": "b",
            "guards": [{"check": {"field": "code", "op": "matches", "value": "^OK"}}],
        }
    ]
    machine = StateMachine.from_dict(doc)
    assert machine.process("a", "go", {"code": "OK 200"}).success
    assert not machine.process("a", "go", {"code": "NOK"}).success


# --- composites ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "record", "expected"),
    [
        (
            [
                {
                    "any_of": [
                        {"field": "t", "op": "gt", "value": 100},
                        {"field": "p", "op": "gt", "value": 200},
                    ]
                }
            ],
            {"p": 201},
            True,
        ),
        (
            [
                {
                    "any_of": [
                        {"field": "t", "op": "gt", "value": 100},
                        {"field": "p", "op": "gt", "value": 200},
                    ]
                }
            ],
            {"t": 1, "p": 1},
            False,
        ),
        ([{"negate": {"field": "s", "op": "eq", "value": "degraded"}}], {"s": "ok"}, True),
        ([{"negate": {"field": "s", "op": "eq", "value": "degraded"}}], {"s": "degraded"}, False),
        (
            [
                {
                    "all_of": [
                        {"field": "t", "op": "gte", "value": 20},
                        {"field": "t", "op": "lte", "value": 80},
                    ]
                }
            ],
            {"t": 80},
            True,
        ),
        (
            [
                {
                    "all_of": [
                        {"field": "t", "op": "gte", "value": 20},
                        {"field": "t", "op": "lte", "value": 80},
                    ]
                }
            ],
            {"t": 81},
            False,
        ),
        # nested: any_of of an all_of group and a negated check
        (
            [
                {
                    "any_of": [
                        {
                            "all_of": [
                                {"field": "t", "op": "gt", "value": 90},
                                {"field": "p", "op": "lt", "value": 10},
                            ]
                        },
                        {"negate": {"field": "mode", "op": "in", "values": ["auto", "manual"]}},
                    ]
                }
            ],
            {"t": 95, "p": 5, "mode": "auto"},
            True,
        ),
        (
            [
                {
                    "any_of": [
                        {
                            "all_of": [
                                {"field": "t", "op": "gt", "value": 90},
                                {"field": "p", "op": "lt", "value": 10},
                            ]
                        },
                        {"negate": {"field": "mode", "op": "in", "values": ["auto", "manual"]}},
                    ]
                }
            ],
            {"t": 95, "p": 50, "mode": "auto"},
            False,
        ),
        # the guard spellings mean the same
        (
            [{"anyOf": [{"field": "a", "op": "is_set"}, {"field": "b", "op": "is_set"}]}],
            {"b": 1},
            True,
        ),
        ([{"not": {"allOf": [{"field": "a", "op": "is_set"}]}}], {"a": 1}, False),
        ([{"check": {"field": "a", "op": "eq", "value": 1}}], {"a": 1}, True),
        # the top-level list is an AND
        ([{"field": "a", "op": "is_set"}, {"field": "b", "op": "is_set"}], {"a": 1}, False),
    ],
)
def test_composites(when: list[Any], record: dict[str, Any], expected: bool) -> None:
    machine = StateMachine.from_dict(machine_doc({"name": "target", "when": when}))
    assert (machine.classify(record) == "target") is expected


def test_when_entries_keep_their_structure() -> None:
    machine = StateMachine.from_dict(
        machine_doc(
            {
                "name": "alert",
                "when": [
                    {
                        "any_of": [
                            {"field": "t", "op": "gt", "value": 1},
                            {"field": "p", "op": "is_set"},
                        ]
                    },
                    {"negate": {"field": "s", "op": "eq", "value": "x"}},
                ],
            }
        )
    )
    state = machine.get_state("alert")
    assert state is not None
    first, second = state.when
    assert [c.label for c in first.any_of] == ["t gt 1", "p is_set"]
    assert second.negate is not None and second.negate.label == "s eq 'x'"
    assert [e.to_dict() for e in state.when] == [
        {"any_of": [{"field": "t", "op": "gt", "value": 1}, {"field": "p", "op": "is_set"}]},
        {"negate": {"field": "s", "op": "eq", "value": "x"}},
    ]
    assert [c.label for e in state.when for c in e.checks()] == ["t gt 1", "p is_set", "s eq 'x'"]


def test_a_when_check_holds_exactly_one_part() -> None:
    leaf = WhenCheck(check=CheckSpec(field="a", op="is_set"))
    with pytest.raises(Exception, match="exactly one of"):
        WhenCheck(check=leaf.check, negate=leaf)
    with pytest.raises(Exception, match="exactly one of"):
        WhenCheck()


# --- classification ------------------------------------------------------------------------------

SENSOR: dict[str, Any] = {
    "meta": {
        "machine_name": "sensor_fsm",
        "classification": {
            "entity_id_field": "sensor_id",
            "timestamp_field": "recorded_at",
            "source": "sensor_feed",
            "default_state": "unknown",
            "auto_route": True,
        },
    },
    "states": [
        {
            "name": "overheating",
            "type": "initial",
            "when": [
                {"field": "temperature", "op": "gt", "value": 100},
                {"field": "pressure", "op": "lt", "value": 50},
            ],
        },
        {
            "name": "normal",
            "when": [
                {"field": "temperature", "op": "gte", "value": 20},
                {"field": "temperature", "op": "lte", "value": 100},
            ],
        },
        {
            "name": "shutdown",
            "type": "terminal",
            "when": [{"field": "status", "op": "in", "values": ["off", "shutdown"]}],
        },
        {"name": "unknown"},
    ],
    "transitions": [
        {"trigger": "cool_down", "source": "overheating", "dest": "normal"},
        {"trigger": "heat", "source": ["normal", "unknown"], "dest": "overheating"},
        {"trigger": "stop", "source": ["overheating", "normal", "unknown"], "dest": "shutdown"},
        {"trigger": "lost", "source": ["overheating", "normal"], "dest": "unknown"},
    ],
}


def test_meta_classification_is_parsed() -> None:
    machine = StateMachine.from_dict(SENSOR)
    assert machine.definition.meta.classification == ClassificationSettings(
        entity_id_field="sensor_id",
        timestamp_field="recorded_at",
        source="sensor_feed",
        default_state="unknown",
        auto_route=True,
    )
    rules = machine.classification_rules
    assert rules.state_names == ("overheating", "normal", "shutdown")
    assert (rules.entity_id_field, rules.timestamp_field, rules.source) == (
        "sensor_id",
        "recorded_at",
        "sensor_feed",
    )
    assert rules.auto_route is True


def test_defaults_without_meta_classification() -> None:
    doc = {k: v for k, v in SENSOR.items() if k != "meta"}
    rules = StateMachine.from_dict(doc).classification_rules
    assert (rules.entity_id_field, rules.timestamp_field, rules.source) == (
        "entity_id",
        None,
        "classifier",
    )
    assert rules.default_state is None and rules.auto_route is False


def test_states_are_tried_in_order_and_the_first_match_wins() -> None:
    machine = StateMachine.from_dict(SENSOR)
    # overheating and shutdown both match: overheating is listed first
    record = {"temperature": 120, "pressure": 10, "status": "off"}
    assert machine.classification_rules.match(record) == "overheating"
    assert machine.classify({"temperature": 50}) == "normal"
    assert machine.classify({"status": "shutdown"}) == "shutdown"
    # nothing matches: the default state
    assert machine.classification_rules.match({"temperature": 5}) is None
    assert machine.classify({"temperature": 5}) == "unknown"


def test_classify_takes_a_machine_a_definition_or_rules() -> None:
    machine = StateMachine.from_dict(SENSOR)
    record = {"temperature": 105, "pressure": 1}
    assert classify(machine, record) == "overheating"
    assert classify(machine.definition, record) == "overheating"
    rules = ClassificationRules(
        states=(
            StateRule("hot", (WhenCheck(check=CheckSpec(field="temp", op="gt", value=100)),)),
            StateRule("cold", (WhenCheck(check=CheckSpec(field="temp", op="lt", value=20)),)),
        ),
        default_state="normal",
    )
    assert [classify(rules, {"temp": t}) for t in (150, 10, 50)] == ["hot", "cold", "normal"]
    no_default = ClassificationRules(states=rules.states)
    assert classify(no_default, {"temp": 50}) is None


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (
            [{"field": "t", "op": "around", "value": 1}],
            "states[0].when[0].op: unknown operator 'around'",
        ),
        ([{"field": "t", "op": "gt"}], "states[0].when[0].value: operator 'gt' needs 'value'"),
        ([{"field": "t", "op": "in"}], "states[0].when[0].values: operator 'in' needs 'values'"),
        (
            [
                {
                    "any_of": [
                        {"field": "t", "op": "is_set"},
                        {"field": "m", "op": "matches", "value": "(("},
                    ]
                }
            ],
            "states[0].when[0].any_of[1].value: invalid regular expression '(('",
        ),
        (
            [{"negate": {"all_of": [{"field": "t", "op": "nope"}]}}],
            "states[0].when[0].negate.all_of[0].op: unknown operator 'nope'",
        ),
        ([{"any_of": []}], "states[0].when[0].any_of: must be a non-empty list"),
        (
            [{"negate": [{"field": "t", "op": "is_set"}]}],
            "states[0].when[0].negate: negate takes one",
        ),
        (
            [{"any_of": [{"field": "t", "op": "is_set"}], "field": "x"}],
            "states[0].when[0]: a when entry is one check",
        ),
        (["expr: t > 1"], "states[0].when[0]: a when entry"),
        ([{"field": "", "op": "is_set"}], "states[0].when[0].field: a check needs 'field'"),
    ],
)
def test_bad_rules_are_located(when: list[Any], expected: str) -> None:
    found = problems(machine_doc({"name": "a", "when": when}))
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    ("classification", "expected"),
    [
        (
            {"default_state": "nowhere"},
            "meta.classification.default_state: unknown state 'nowhere'",
        ),
        ({"colour": "red"}, "meta.classification.colour: unknown key"),
        ({"entity_id_field": 3}, "meta.classification.entity_id_field: must be a string"),
        ({"auto_route": "yes"}, "meta.classification.auto_route: must be true or false"),
        ("sensor_id", "meta.classification: classification settings must be a mapping"),
    ],
)
def test_bad_classification_settings_are_located(classification: Any, expected: str) -> None:
    doc = machine_doc({"name": "a"}, meta={"classification": classification})
    found = problems(doc)
    assert any(p.startswith(expected) for p in found), found


def test_a_choice_state_cannot_classify() -> None:
    doc = machine_doc({"name": "a"}, {"name": "b"})
    doc["states"].append(
        {"name": "pick", "type": "choice", "when": [{"field": "x", "op": "is_set"}]}
    )
    doc["transitions"] = [
        {"trigger": "go", "source": "a", "dest": "pick"},
        {"source": "pick", "dest": "b"},
    ]
    assert any("states[2].when: choice state 'pick'" in p for p in problems(doc))


def test_validate_prints_located_when_problems(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from pystator.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(
        "meta: {machine_name: bad}\n"
        "states:\n"
        "  - name: a\n"
        "    type: initial\n"
        "    when:\n"
        "      - {field: t, op: around, value: 1}\n"
        "transitions: []\n"
    )
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: states[0].when[0].op (line 6): unknown operator 'around'" in out
