"""The definition budget: the one YAML reader refuses alias bombs, deep nesting and oversized
documents with a located problem while it reads; data that arrives parsed (JSON, dicts) meets
the same limits; ordinary anchors and aliases still load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pystator.fsm_core.document_size import oversize
from pystator.fsm_core.errors import MachineValidationError
from pystator.fsm_core.limits import (
    MAX_DEFINITION_BYTES,
    MAX_DEFINITION_DEPTH,
    MAX_DEFINITION_NODES,
    MAX_STATES,
    MAX_TRANSITIONS,
)
from pystator.fsm_core.loading import parse_json, read_document
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.yaml_loader import dump_yaml, parse_yaml
from pystator.registry import versions
from tests.support.yaml_bombs import ISSUE_BOMB_BYTES, alias_bomb, shared_guards


def _refusal(text: str, **limits: int) -> str:
    with pytest.raises(MachineValidationError) as caught:
        parse_yaml(text, source="bomb.yaml", **limits)
    (problem,) = caught.value.problems
    assert caught.value.source == "bomb.yaml"
    return str(problem)


def test_the_issues_alias_bomb_is_refused_at_the_line_that_passes_the_budget() -> None:
    bomb = alias_bomb()
    assert len(bomb.encode()) == ISSUE_BOMB_BYTES
    # a5 (line 10) expands to 10**5 leaves: the budget is spent there
    assert _refusal(bomb) == f"aliases expand past {MAX_DEFINITION_NODES:,} nodes at line 10"


@pytest.mark.parametrize("levels, width", [(30, 10), (64, 2), (3, 1000)])
def test_deeper_and_wider_bombs_are_refused_too(levels: int, width: int) -> None:
    assert "aliases expand past" in _refusal(alias_bomb(levels, width))


def test_merge_keys_count_what_they_merge() -> None:
    lines = ["m0: &m0 {k: v}"]
    lines += [
        f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(10)) + "}"
        for i in range(1, 7)
    ]
    lines.append("top: {<<: *m6, extra: 1}")
    assert "aliases expand past" in _refusal("\n".join(lines))


def test_a_plain_document_past_the_node_budget_is_refused() -> None:
    text = "items: [" + ", ".join(["1"] * 200) + "]"
    assert _refusal(text, max_nodes=100) == "the document has more than 100 nodes at line 1"


def test_nesting_past_the_depth_limit_is_refused_before_recursing() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    message = _refusal(deep)
    assert message == f"the document nests deeper than {MAX_DEFINITION_DEPTH} levels at line 1"
    # an alias adds the height of what it names
    chain = ["x0: &x0 [leaf]"] + [f"x{i}: &x{i} [*x{i - 1}]" for i in range(1, 80)]
    assert "aliases nest deeper than" in _refusal("\n".join(chain))


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    assert _refusal("loop: &a [1, *a]") == "alias *a at line 1 refers to a node that contains it"


def test_a_document_past_the_byte_limit_is_refused_before_it_is_parsed() -> None:
    big = "description: " + "x" * MAX_DEFINITION_BYTES
    assert _refusal(big).startswith(f"the document is {len(big):,} bytes; at most")


def test_syntax_errors_are_still_located() -> None:
    assert _refusal("a: [1, 2").startswith("YAML syntax error at line 1")


def test_ordinary_anchors_and_aliases_still_load() -> None:
    machine = StateMachine.from_yaml(shared_guards())
    send, finish = machine.definition.transitions
    assert [g.name for g in send.guards] == ["is_valid", "is_paid"]
    assert [g.name for g in finish.guards] == ["is_valid", "is_paid"]
    assert (finish.trigger, finish.sources, finish.dest) == ("finish", ("sent",), "done")


def test_a_budget_sized_document_loads() -> None:
    # just under the budget, spread over aliases: 5 x 10**4 leaves plus their lists
    text = "metadata:\n  a0: &a0 x\n" + "".join(
        f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 4)
    )
    document = parse_yaml(text)
    assert len(document["metadata"]["a3"]) == 10


def test_dump_yaml_round_trips() -> None:
    data = {"meta": {"machine_name": "m"}, "states": [{"name": "a", "type": "initial"}]}
    assert parse_yaml(dump_yaml(data)) == data
    assert dump_yaml(data).startswith("meta:")  # keys keep their order


# --- documents that arrive parsed ----------------------------------------------------------


def test_shared_parts_of_a_dict_are_counted_every_time() -> None:
    leaf: list[Any] = ["x"] * 10
    for _ in range(8):
        leaf = [leaf] * 10  # ten references to one list: 10**9 leaves if copied
    problem = oversize({"meta": {"machine_name": "m"}, "metadata": {"bomb": leaf}})
    assert problem is not None
    assert problem.path.startswith("metadata.bomb[0]")
    assert f"more than {MAX_DEFINITION_NODES:,} nodes" in problem.message


def test_canonical_refuses_what_it_would_have_to_copy_a_billion_times() -> None:
    """``versions.canonical`` (what the registry stores) on the bomb as PyYAML's own
    ``safe_load`` builds it: shared lists, a billion leaves once copied to JSON."""
    document = yaml.safe_load(alias_bomb())
    with pytest.raises(MachineValidationError) as caught:
        versions.canonical(document)
    assert caught.value.problems[0].path.startswith("metadata.a5")


def test_a_cyclic_dict_is_refused_instead_of_walked_forever() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    problem = oversize({"metadata": loop})
    assert problem is not None and "nests deeper" in problem.message


def test_from_dict_and_validate_config_refuse_an_oversized_document() -> None:
    nested: Any = "leaf"
    for _ in range(MAX_DEFINITION_DEPTH + 5):
        nested = [nested]
    config = {
        "meta": {"machine_name": "m"},
        "states": [{"name": "a", "type": "initial"}],
        "metadata": {"deep": nested},
    }
    with pytest.raises(MachineValidationError) as caught:
        StateMachine.from_dict(config)
    assert caught.value.problems[0].path.startswith("metadata.deep")
    assert StateMachine.validate_config(config)[0].startswith("metadata.deep")


def test_json_documents_meet_the_same_limits() -> None:
    assert parse_json('{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(MachineValidationError, match="nests deeper than"):
        parse_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MachineValidationError, match="nests deeper than"):
        parse_json("[" * 100 + "]" * 100)
    with pytest.raises(MachineValidationError, match="more than 100,000 nodes"):
        parse_json(json.dumps({"items": [0] * (MAX_DEFINITION_NODES + 1)}))
    with pytest.raises(MachineValidationError, match="bytes; at most"):
        parse_json(json.dumps({"d": "x" * MAX_DEFINITION_BYTES}))


def test_a_file_past_the_byte_limit_is_not_read_whole(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as file:
        file.truncate(50 * MAX_DEFINITION_BYTES)  # sparse: 50 MiB of NUL bytes
    with pytest.raises(MachineValidationError, match="larger than") as caught:
        read_document(huge)
    assert caught.value.source == str(huge)


def test_states_and_transitions_have_limits() -> None:
    states = [{"name": "s0", "type": "initial"}] + [
        {"name": f"s{i}"} for i in range(1, MAX_STATES + 1)
    ]
    with pytest.raises(MachineValidationError) as caught:
        StateMachine.from_dict({"meta": {"machine_name": "m"}, "states": states})
    assert str(caught.value.problems[0]) == (
        f"states: {MAX_STATES + 1:,} states; a machine may have at most {MAX_STATES:,}"
    )
    transitions = [{"trigger": "t", "source": "a", "dest": "a"}] * (MAX_TRANSITIONS + 1)
    problems = StateMachine.validate_config(
        {
            "meta": {"machine_name": "m"},
            "states": [{"name": "a", "type": "initial"}],
            "transitions": transitions,
        }
    )
    assert problems == [
        f"transitions: {MAX_TRANSITIONS + 1:,} transitions; a machine may have at most "
        f"{MAX_TRANSITIONS:,}"
    ]
