"""Top-level sections of the documented schema: ``meta``, ``groups``, ``error_policy``,
``state_variables``, ``context_invariants``, ``events``, and the validation entry points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pystator import (
    ConfigValidator,
    DefinitionWarning,
    GuardNotFoundError,
    MachineValidationError,
    StateMachine,
    validate_config,
    validate_machine_config,
)
from pystator.fsm_core.definition import FallbackMode


def vending(**meta: Any) -> dict[str, Any]:
    return {
        "meta": {"machine_name": "vending", **meta},
        "states": [
            {"name": "waiting", "type": "initial"},
            {"name": "paid"},
            {"name": "served", "type": "terminal"},
        ],
        "transitions": [
            {"trigger": "coin", "source": "waiting", "dest": "paid", "guards": ["genuine"]},
            {"trigger": "vend", "source": "paid", "dest": "served"},
        ],
    }


def problems(doc: Any) -> list[str]:
    with pytest.raises(MachineValidationError) as caught:
        StateMachine.from_dict(doc)
    return [str(p) for p in caught.value.problems]


# --- meta --------------------------------------------------------------------------------------


def test_a_minimal_document_needs_no_meta(tmp_path: Path) -> None:
    doc = vending()
    del doc["meta"]
    assert StateMachine.from_dict(doc).name == "unnamed"
    path = tmp_path / "coffee-bar.yaml"
    path.write_text("states: [{name: a, type: initial}]\ntransitions: []\n")
    assert StateMachine.from_yaml(path).name == "coffee-bar"


def test_strict_mode_rejects_unknown_events_and_unregistered_guards() -> None:
    m = StateMachine.from_dict(vending())
    assert m.strict_mode
    assert m.process("waiting", "kick").metadata["reason"] == "undefined_trigger"
    with pytest.raises(GuardNotFoundError):
        m.process("waiting", "coin")


def test_lenient_mode_makes_unknown_events_no_ops_and_missing_guards_pass() -> None:
    m = StateMachine.from_dict(vending(strict_mode=False))
    kick = m.process("waiting", "kick", {"n": 1})
    assert kick.success and kick.target_state == "waiting"
    assert kick.metadata == {"noop": True, "reason": "undefined_trigger"}
    assert kick.all_actions == () and kick.states_entered == ()
    assert m.process("waiting", "vend").target_state == "waiting"  # known, not from here
    assert m.process("waiting", "coin").target_state == "paid"  # 'genuine' unregistered: passes
    m.guard("genuine")(lambda ctx: False)
    assert m.process("waiting", "coin").metadata["reason"] == "guard_rejected"  # registered: used
    assert m.process("served", "coin").metadata["reason"] == "terminal_state"  # structure holds
    assert m.accepts_trigger("kick") and not m.has_trigger("kick")


def test_split_switches_override_strict_mode() -> None:
    events_only = StateMachine.from_dict(vending(reject_invalid_events=False))
    assert events_only.process("waiting", "kick").success
    with pytest.raises(GuardNotFoundError):
        events_only.process("waiting", "coin")
    guards_only = StateMachine.from_dict(vending(strict_mode=False, reject_invalid_events=True))
    assert not guards_only.process("waiting", "kick").success
    assert guards_only.process("waiting", "coin").success


def test_event_normalizer() -> None:
    m = StateMachine.from_dict(vending(event_normalizer="lower"))
    m.guard("genuine")(lambda ctx: True)
    assert m.process("waiting", "COIN").target_state == "paid"
    assert m.process("paid", "Vend", {}).target_state == "served"
    assert m.has_trigger("VEND")
    session = m.create()
    session.send("CoIn")
    assert session.current_state == "paid"
    shouting = vending(event_normalizer="upper")
    assert any("trigger 'coin' is not upper-case" in p for p in problems(shouting))
    assert any(
        "meta.event_normalizer: must be one of lower, upper" in p
        for p in problems(vending(event_normalizer="title"))
    )


def test_meta_extra_keys_are_kept_but_likely_typos_are_not() -> None:
    m = StateMachine.from_dict(vending(owner="payments", classification={"source": "x"}))
    assert m.meta["owner"] == "payments"
    assert "meta.strict_mod: unknown key: did you mean 'strict_mode'?" in problems(
        vending(strict_mod=True)
    )
    assert "meta.Version: unknown key: did you mean 'version'?" in problems(vending(Version="2"))


def test_orchestrator_default_fallback_values() -> None:
    doc = vending(orchestrator_default_fallback="persist")
    doc["error_policy"] = {"default_fallback": "waiting", "retry_attempts": 2}
    policy = StateMachine.from_dict(doc).error_policy
    assert (policy.default_fallback, policy.retry_attempts, policy.mode) == (
        "waiting",
        2,
        FallbackMode.PERSIST,
    )
    assert policy.max_attempts(5) == 3 and policy.active
    assert any(
        "must be one of off, hint, persist" in p
        for p in problems(vending(orchestrator_default_fallback="always"))
    )


# --- error_policy ------------------------------------------------------------------------------


def test_error_policy_checks_and_ignored_keys() -> None:
    doc = vending()
    doc["error_policy"] = {"default_fallback": "nowhere", "retry_attempts": -1}
    found = problems(doc)
    assert "error_policy.default_fallback: unknown state 'nowhere'" in found
    assert any(
        p.startswith("error_policy.retry_attempts: must be a non-negative integer") for p in found
    )
    doc["error_policy"] = {
        "default_fallback": "waiting",
        "strict_mode": False,
        "on_invalid_trigger": "x",
    }
    with pytest.warns(DefinitionWarning) as caught:
        StateMachine.from_dict(doc)
    assert [str(w.message) for w in caught] == [
        "error_policy.strict_mode: ignored by the engine: use meta.strict_mode",
        "error_policy.on_invalid_trigger: ignored by the engine: it was never implemented; "
        "see meta.reject_invalid_events",
    ]
    doc["error_policy"] = {"fallback": "waiting"}
    assert any(p.startswith("error_policy.fallback: unknown key") for p in problems(doc))
    assert StateMachine.from_dict(vending()).error_policy.active is False


# --- state_variables, context_invariants, validate_context: true ------------------------------


def contract(**extra: Any) -> dict[str, Any]:
    doc = vending(validate_context=True)
    doc["state_variables"] = [
        {"key": "machine_id", "type": "string", "required": True, "description": "Serial"},
        {"key": "credit", "type": "number", "default": 0},
        {"key": "options", "type": "object"},
        {"key": "eco", "type": "boolean", "default": False},
        "location",
    ]
    doc["context_invariants"] = [
        {"name": "credit_not_negative", "check": {"field": "credit", "op": "gte", "value": 0}},
        {"name": "known_size", "field": "size", "op": "in", "values": ["s", "m", "l", None]},
    ]
    doc.update(extra)
    return doc


def test_validate_context_true_enforces_the_contract_before_guards() -> None:
    m = StateMachine.from_dict(contract())
    m.guard("genuine")(lambda ctx: True)
    assert m.process("waiting", "coin", {"machine_id": "m-1", "credit": 5}).success
    bad = m.process("waiting", "coin", {"credit": -1, "options": [], "eco": "yes", "size": "xl"})
    assert bad.metadata["reason"] == "context_validation"
    assert bad.metadata["errors"] == [
        "missing required key 'machine_id'",
        "'options' must be a object, got list",
        "'eco' must be a boolean, got str",
        "invariant 'credit_not_negative' failed (credit gte 0)",
        "invariant 'known_size' failed (size in ['s', 'm', 'l', None])",
    ]
    assert "invariant 'credit_not_negative'" in str(bad.error)
    assert m.default_context() == {"credit": 0, "eco": False}


def test_the_contract_is_ignored_unless_validate_context_is_true() -> None:
    m = StateMachine.from_dict(contract(meta={"machine_name": "vending"}))
    m.guard("genuine")(lambda ctx: True)
    assert m.process("waiting", "coin", {"credit": -5}).success


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ([{"key": "a"}, "a"], "state_variables[1].key: duplicate state variable 'a'"),
        (
            [{"key": "a", "type": "decimal"}],
            "state_variables[0].type: must be one of string, number, boolean, object",
        ),
        ([{"type": "string"}], "state_variables[0].key: missing"),
        ([{"key": "a", "unit": "kg"}], "state_variables[0].unit: unknown key"),
        ("a", "state_variables: must be a list"),
    ],
)
def test_state_variable_mistakes(variables: Any, expected: str) -> None:
    doc = vending()
    doc["state_variables"] = variables
    assert any(p.startswith(expected) for p in problems(doc)), problems(doc)


def test_invariant_mistakes() -> None:
    doc = vending()
    doc["context_invariants"] = [
        {"name": "both", "check": {"field": "a", "op": "eq", "value": 1}, "field": "a", "op": "eq"},
        {"name": "bad_op", "check": {"field": "a", "op": "approx", "value": 1}},
        {"name": "no_values", "field": "a", "op": "in"},
    ]
    found = problems(doc)
    assert (
        "context_invariants[0]: an invariant needs either 'check: {field, op, value}' or inline field/op/value"
        in found
    )
    assert any(
        p.startswith("context_invariants[1].check.op: unknown operator 'approx'") for p in found
    )
    assert "context_invariants[2].values: operator 'in' needs 'values': a list" in found


# --- groups and events -------------------------------------------------------------------------


def test_events_and_groups_are_documentation() -> None:
    doc = vending()
    doc["events"] = [{"name": "coin", "description": "A coin drops", "payload": {"cents": "int"}}]
    doc["groups"] = {"sales": {"description": "Taking money"}, "service": None}
    m = StateMachine.from_dict(doc)
    assert [(e.name, e.payload) for e in m.definition.events] == [("coin", {"cents": "int"})]
    assert [g.name for g in m.definition.groups] == ["sales", "service"]
    doc["events"] = [{"name": "coin", "schema": {}}]
    doc["groups"] = {"sales": {"colour": "red"}}
    found = problems(doc)
    assert any(p.startswith("events[0].schema: unknown key") for p in found)
    assert any(p.startswith("groups.sales.colour: unknown key") for p in found)


# --- validation entry points -------------------------------------------------------------------


def test_validate_config_forms() -> None:
    broken = vending()
    broken["transitions"][1]["dest"] = "nowhere"
    expected = ["transitions[1].dest: unknown state 'nowhere'"]
    assert validate_config(broken, strict=False) == expected
    assert ConfigValidator().validate(broken) == expected
    assert StateMachine.validate_config(broken) == expected
    assert validate_config(vending()) == [] and validate_machine_config is validate_config
    with pytest.raises(MachineValidationError, match="unknown state 'nowhere'"):
        validate_config(broken)
