"""The ``overlapping_when`` lint: two states' rules on a common field that accept one record."""

from __future__ import annotations

from typing import Any

import pytest

from pystator import StateMachine
from pystator.fsm_core.lint import LintSeverity, lint
from pystator.fsm_core.when_overlap import MAX_ALTERNATIVES, find_overlaps
from tests.discovery.test_when_rules import SENSOR, machine_doc


def check(field: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    out = {"field": field, "op": op, **extra}
    if value is not None:
        out["value"] = value
    return out


def overlaps(*whens: list[Any]) -> list[tuple[str, str, dict[str, Any]]]:
    states = [{"name": f"s{i}", "when": when} for i, when in enumerate(whens)]
    machine = StateMachine.from_dict(machine_doc(*states))
    found = find_overlaps(machine.definition.states)
    for overlap in found:  # every witness is accepted by both states
        first = machine.classification_rules
        assert first.match(overlap.witness) == overlap.first
        second = machine.get_state(overlap.second)
        assert second is not None
        assert all(entry.predicate(overlap.witness) for entry in second.when)
    return [(o.first, o.second, dict(o.witness)) for o in found]


@pytest.mark.parametrize(
    ("first", "second", "witness"),
    [
        # numeric ranges that intersect
        ([check("t", "gt", 100)], [check("t", "gte", 90)], {"t": 101}),
        ([check("t", "gte", 20), check("t", "lte", 100)], [check("t", "gte", 100)], {"t": 100}),
        ([check("t", "lt", 10)], [check("t", "lt", 5)], {"t": 4}),
        # identical rules
        ([check("s", "eq", "x")], [check("s", "eq", "x")], {"s": "x"}),
        # sets that share a value
        ([check("s", "in", values=["a", "b"])], [check("s", "in", values=["b", "c"])], {"s": "b"}),
        # a missing field is neither "a" nor "b"
        ([check("s", "not_in", values=["a"])], [check("s", "neq", "b")], {}),
        (
            [check("s", "not_in", values=["a"]), check("s", "is_set")],
            [check("s", "neq", "b")],
            {"s": "x"},
        ),
        # presence
        ([check("e", "is_set")], [check("e", "eq", 3)], {"e": 3}),
        ([check("e", "is_null")], [check("e", "neq", 3)], {}),
        # strings
        ([check("c", "starts_with", "ERR")], [check("c", "ends_with", "42")], {"c": "ERR42"}),
        (
            [check("c", "contains", "disk")],
            [check("c", "starts_with", "FATAL")],
            {"c": "FATALdisk"},
        ),
        # negation and any_of are analysed too
        (
            [{"negate": check("t", "lte", 100)}],
            [{"any_of": [check("t", "gt", 500), check("p", "is_set")]}],
            {"t": 501},
        ),
    ],
)
def test_overlapping_rules_are_found_with_a_witness(
    first: list[Any], second: list[Any], witness: dict[str, Any]
) -> None:
    assert overlaps(first, second) == [("s0", "s1", witness)]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # disjoint ranges
        ([check("t", "gt", 100)], [check("t", "lte", 100)]),
        ([check("t", "gte", 20), check("t", "lte", 80)], [check("t", "gt", 80)]),
        # disjoint sets and presence
        ([check("s", "in", values=["a", "b"])], [check("s", "in", values=["c"])]),
        ([check("s", "eq", "a")], [check("s", "neq", "a")]),
        ([check("e", "is_set")], [check("e", "is_null")]),
        # one shared field disjoint is enough, whatever the others do
        (
            [check("t", "gt", 100), check("p", "lt", 50)],
            [check("t", "lt", 0), check("p", "lt", 50)],
        ),
        # negation makes them disjoint
        ([check("s", "eq", "x")], [{"negate": check("s", "eq", "x")}]),
        # every branch of any_of is disjoint from the other rule
        (
            [{"any_of": [check("t", "gt", 100), check("t", "lt", 0)]}],
            [check("t", "gte", 0), check("t", "lte", 100)],
        ),
        # no common field: an intended priority, not reported
        ([check("t", "gt", 100)], [check("status", "eq", "off")]),
        # a state without rules never overlaps
        ([check("t", "gt", 100)], []),
    ],
)
def test_disjoint_or_unrelated_rules_are_not_reported(first: list[Any], second: list[Any]) -> None:
    assert overlaps(first, second) == []


def test_the_guides_sensor_machine_lints_without_overlap() -> None:
    findings = lint(StateMachine.from_dict(SENSOR))
    assert [f for f in findings if f.code == "overlapping_when"] == []


def test_the_lint_names_both_states_the_fields_and_the_witness() -> None:
    doc = machine_doc(
        {"name": "hot", "when": [check("temperature", "gt", 100)]},
        {"name": "warm", "when": [check("temperature", "gte", 90)]},
    )
    (finding,) = [f for f in lint(doc) if f.code == "overlapping_when"]
    assert finding.severity is LintSeverity.WARNING
    assert finding.message == (
        "States 'hot' (states[0]) and 'warm' (states[1]) both match {'temperature': 101} "
        "(when rules on temperature): 'hot' is listed first and wins"
    )
    assert dict(finding.context) == {
        "state": "hot",
        "other": "warm",
        "fields": ["temperature"],
        "witness": {"temperature": 101},
    }


def test_a_rule_too_large_to_expand_is_left_alone() -> None:
    # 2 ** 7 = 128 alternatives > MAX_ALTERNATIVES: not analysed, so nothing is claimed
    wide = [{"any_of": [check(f"f{i}", "eq", 1), check(f"g{i}", "eq", 1)]} for i in range(7)]
    assert MAX_ALTERNATIVES < 2**7
    assert overlaps(wide, [check("f0", "eq", 1)]) == []
    assert overlaps(wide[:3], [check("f0", "eq", 1)]) == [("s0", "s1", {"f0": 1, "f1": 1, "f2": 1})]
