"""pystator's own forms keep working; where the documented schema has a key for the same thing,
ours loads with a :class:`DefinitionDeprecationWarning` naming the replacement."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from pystator import DefinitionDeprecationWarning, StateMachine

OWN_FORMS: dict[str, Any] = {
    "meta": {"machine_name": "legacy", "validate_context": {"RUNNING": ["job_id"]}},
    "states": [
        {"name": "IDLE", "type": "initial"},
        {
            "name": "RUNNING",
            "initial": "FETCH",
            "children": [
                {"name": "FETCH"},
                {"name": "BUILD", "timeout": {"after": "2m", "dest": "IDLE"}},
            ],
        },
        {
            "name": "WATCH",
            "type": "parallel",
            "initial": False,
            "regions": [
                {"name": "LOG", "states": [{"name": "TAIL", "type": "initial"}, {"name": "PAUSED"}]}
            ],
        },
    ],
    "transitions": [
        {
            "trigger": "run",
            "source": "IDLE",
            "dest": "RUNNING",
            "guard": "expr: job_id is not None",
        },
        {"trigger": "next", "source": "FETCH", "dest": "BUILD", "action": "compile"},
        {"trigger": "watch", "source": "IDLE", "dest": "WATCH"},
        {"trigger": "pause", "source": "TAIL", "dest": "PAUSED"},
    ],
}


def load_with_warnings(doc: Any) -> tuple[StateMachine, list[str]]:
    with pytest.warns(DefinitionDeprecationWarning) as caught:
        machine = StateMachine.from_dict(doc)
    return machine, [str(w.message) for w in caught]


def test_our_forms_still_work() -> None:
    m, _ = load_with_warnings(OWN_FORMS)
    r = m.process("IDLE", "run", {"job_id": 7})
    assert (r.target_state, r.states_entered) == ("FETCH", ("RUNNING", "FETCH"))
    assert m.process("FETCH", "next", {"job_id": 7}).all_actions == ("compile",)
    assert m.process("FETCH", "next", {}).metadata["reason"] == "context_validation"
    (timer,) = m.process("FETCH", "next", {"job_id": 7}).timers_to_arm
    assert timer.delay_ms == 120_000
    assert m.process("BUILD", "timeout", {"job_id": 7}).target_state == "IDLE"
    assert m.process("IDLE", "watch").target_state == "WATCH[LOG=TAIL]"
    session = m.create()
    session.send("watch")
    assert session.is_watch and session.is_tail


def test_each_deprecation_names_its_replacement() -> None:
    _, messages = load_with_warnings(OWN_FORMS)
    assert messages == [
        "states[1].initial: 'initial: FETCH' on a state is deprecated: write 'initial_child: FETCH'",
        "states[1].children[1].timeout.dest: 'timeout.dest' is deprecated: write 'timeout.destination'",
        "states[2].regions[0].states[0].type: marking a child state 'type: initial' is deprecated "
        "(the documented schema has one initial state per machine): set 'initial: TAIL' on region "
        "'LOG' and make the child 'stable'",
    ]


def test_the_documented_forms_load_without_warnings() -> None:
    doc: Any = {
        "meta": {"machine_name": "modern"},
        "states": [
            {"name": "IDLE", "type": "initial"},
            {"name": "RUNNING", "initial_child": "FETCH"},
            {"name": "FETCH", "parent": "RUNNING"},
            {
                "name": "BUILD",
                "parent": "RUNNING",
                "timeout": {"seconds": 120, "destination": "IDLE"},
            },
        ],
        "transitions": [{"trigger": "run", "source": "IDLE", "dest": "RUNNING"}],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = StateMachine.from_dict(doc)
    assert m.process("IDLE", "run").target_state == "FETCH"


def test_a_nested_initial_marker_on_a_compound_child_is_deprecated_too() -> None:
    doc: Any = {
        "states": [
            {"name": "off", "type": "initial"},
            {"name": "on", "children": [{"name": "low", "type": "initial"}, {"name": "high"}]},
        ],
        "transitions": [{"trigger": "flip", "source": "off", "dest": "on"}],
    }
    m, messages = load_with_warnings(doc)
    assert messages == [
        "states[1].children[0].type: marking a child state 'type: initial' is deprecated (the "
        "documented schema has one initial state per machine): set 'initial_child: low' on 'on' "
        "and make the child 'stable'"
    ]
    assert m.process("off", "flip").target_state == "low"


def test_using_both_spellings_at_once_is_an_error() -> None:
    from pystator import MachineValidationError

    doc: Any = {
        "states": [
            {"name": "a", "type": "initial", "initial": "b", "initial_child": "b"},
            {
                "name": "b",
                "parent": "a",
                "timeout": {"seconds": 1, "dest": "a", "destination": "a"},
            },
        ],
        "transitions": [],
    }
    with pytest.raises(MachineValidationError) as caught:
        StateMachine.from_dict(doc)
    found = [str(p) for p in caught.value.problems]
    assert "states[0].initial: use 'initial_child' alone, not with 'initial'" in found
    assert "states[1].timeout: use 'destination' alone, not with 'dest'" in found
