"""``StateMachine.initial_entry``: a new entity enters the initial configuration with the same
plan a transition into that configuration uses — ``when`` decided on the context, effects
applied in order, the same actions, skipped entries and timers — for a flat, a compound and a
parallel initial state; a ``when`` that cannot be evaluated fails the same way on both."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from pystator import StateMachine
from pystator.fsm_core.errors import ContextValidationError
from pystator.fsm_core.expressions import ExpressionEvaluationError
from pystator.fsm_core.records import CREATED_TRIGGER
from pystator.fsm_core.results import TransitionResult

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)

# Each machine starts in the configuration that `back` (from `out`) enters again.
FLAT = """
meta: {machine_name: flat}
states:
  - name: open
    type: initial
    on_enter:
      - {name: greet, when: {field: vip, op: eq, value: true}}
      - {name: audit, when: "amount > 100"}
      - {set: {stage: opened}}
      - {increment: openings}
      - {timestamp: opened_at}
      - {branch: {when: "stage == 'opened'", then: [seen_stage], else: [missed_stage]}}
      - record
  - {name: out}
transitions:
  - {trigger: leave, source: open, dest: out}
  - {trigger: back, source: out, dest: open}
  - {trigger: expire, source: open, dest: out, after: 1h}
"""

COMPOUND = """
meta: {machine_name: compound}
states:
  - name: work
    type: initial
    initial_child: first
    on_enter: [{name: begin, when: {field: urgent, op: eq, value: true}}, {set: {phase: work}}]
  - name: first
    parent: work
    on_enter: [{name: step, when: "phase == 'work'"}, {name: skip, when: "phase != 'work'"}]
  - {name: second, parent: work}
  - {name: out}
transitions:
  - {trigger: leave, source: work, dest: out}
  - {trigger: back, source: out, dest: work}
  - {trigger: next, source: first, dest: second, after: 5m}
  - {trigger: stall, source: work, dest: out, after: 1h}
"""

PARALLEL = """
meta: {machine_name: desk}
states:
  - name: trading
    type: parallel
    initial: true
    on_enter: [open_session, {set: {session: open}}]
    regions:
      - name: orders
        initial: scanning
        states:
          - name: scanning
            on_enter:
              - {name: start_scan, when: "session == 'open'"}
              - {name: never, when: "session == 'shut'"}
          - {name: placing}
      - name: risk
        initial: calm
        states:
          - {name: calm, on_enter: [{increment: calms}]}
          - {name: alarmed}
  - {name: out}
transitions:
  - {trigger: leave, source: trading, dest: out}
  - {trigger: back, source: out, dest: trading}
  - {trigger: found, source: scanning, dest: placing, region: orders, after: 5s}
"""

FIELDS = (
    "target_state",
    "enter_actions",
    "states_entered",
    "timers_to_arm",
    "context",
    "metadata",
)


def machine(text: str) -> StateMachine:
    return StateMachine.from_dict(yaml.safe_load(text))


def view(result: TransitionResult) -> dict[str, Any]:
    """What an entry decides (the parts a transition shares with a creation)."""
    return {name: getattr(result, name) for name in FIELDS}


def names(result: TransitionResult) -> list[str]:
    return [a.name for a in result.actions]


def test_when_is_decided_and_effects_are_applied_on_the_given_context() -> None:
    entry = machine(FLAT).initial_entry({"vip": True, "amount": 5}, NOW)

    assert (entry.success, entry.trigger, entry.target_state) == (True, CREATED_TRIGGER, "open")
    assert names(entry) == ["greet", "seen_stage", "record"]
    assert entry.metadata["skipped_actions"] == ["audit (when expr: amount > 100)"]
    assert entry.context == {
        "vip": True,
        "amount": 5,
        "stage": "opened",
        "openings": 1,
        "opened_at": NOW.isoformat(),
    }
    assert [t.trigger for t in entry.timers_to_arm] == ["expire"]
    assert (entry.exit_actions, entry.states_exited, entry.timers_to_cancel) == ((), (), ())


def test_the_other_branch_of_each_condition() -> None:
    entry = machine(FLAT).initial_entry({"vip": False, "amount": 500}, NOW)
    assert names(entry) == ["audit", "seen_stage", "record"]
    assert entry.metadata["skipped_actions"] == ["greet (when check: vip eq True)"]


def test_the_callers_context_is_not_changed() -> None:
    context = {"vip": True, "amount": 5}
    machine(FLAT).initial_entry(context, NOW)
    assert context == {"vip": True, "amount": 5}


@pytest.mark.parametrize("text", [FLAT, COMPOUND, PARALLEL], ids=["flat", "compound", "parallel"])
@pytest.mark.parametrize(
    "context",
    [{}, {"vip": True, "urgent": True, "amount": 500}, {"vip": False, "amount": 1}],
    ids=["empty", "all-true", "mixed"],
)
def test_a_creation_enters_as_a_transition_into_the_same_configuration(
    text: str, context: dict[str, Any]
) -> None:
    subject = machine(text)
    created = subject.initial_entry(context, NOW)
    entered = subject.process("out", "back", context, NOW)

    assert entered.success and created.target_state == subject.get_initial_state()
    assert view(created) == view(entered)
    # a transition also exits `out`; the entry part of its plan is the whole of the creation
    assert created.actions == entered.enter_actions


def test_every_state_of_a_compound_or_parallel_initial_configuration_is_entered() -> None:
    compound = machine(COMPOUND).initial_entry({"urgent": True}, NOW)
    assert compound.states_entered == ("work", "first")
    assert names(compound) == ["begin", "step"]
    assert {t.state for t in compound.timers_to_arm} == {"work", "first"}

    parallel = machine(PARALLEL).initial_entry({}, NOW)
    assert parallel.states_entered == ("trading", "scanning", "calm")
    assert names(parallel) == ["open_session", "start_scan"]
    assert parallel.context == {"session": "open", "calms": 1}


BROKEN = """
meta: {machine_name: broken}
states:
  - {name: open, type: initial, on_enter: [{name: ratio, when: "amount / count > 1"}]}
  - {name: out}
transitions:
  - {trigger: back, source: out, dest: open}
"""


def test_a_when_that_cannot_be_evaluated_fails_as_it_does_on_a_transition() -> None:
    subject = machine(BROKEN)
    context = {"amount": 1, "count": 0}
    with pytest.raises(ExpressionEvaluationError) as created:
        subject.initial_entry(context, NOW)
    with pytest.raises(ExpressionEvaluationError) as entered:
        subject.process("out", "back", context, NOW)
    assert created.value.to_dict() == entered.value.to_dict()
    assert created.value.code.value == "GUARD_FAILED"


def test_a_context_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ContextValidationError):
        machine(FLAT).initial_entry(["not", "a", "mapping"])  # type: ignore[arg-type]
