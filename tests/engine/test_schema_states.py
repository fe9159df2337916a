"""The ``states`` section of the documented schema: types, hierarchy, parallel regions, timeouts,
``when``, groups and metadata — loaded and run, with exact exit/enter orders."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from pystator import MachineValidationError, StateMachine
from tests.support.declarative_machines import (
    PARALLEL_NAMES_YAML,
    PARALLEL_NESTED_YAML,
    TICKET_YAML,
    load,
)


def problems(doc: Any) -> list[str]:
    with pytest.raises(MachineValidationError) as caught:
        StateMachine.from_dict(doc)
    return [str(p) for p in caught.value.problems]


@pytest.fixture
def ticket() -> StateMachine:
    return StateMachine.from_dict(load(TICKET_YAML))


# --- hierarchy: flat `parent:` entries and `initial_child` ------------------------------------


def test_initial_child_resolves_entry_to_the_leaf_with_lca_order(ticket: StateMachine) -> None:
    r = ticket.process("received", "accept", {"ticket_id": "T-1"})
    assert r.target_state == "queued"
    assert r.states_exited == ("received",)
    assert r.states_entered == ("handling", "queued")
    assert r.all_actions == ("log_handling",)
    assert r.context == {"ticket_id": "T-1", "stage": "accepted"}  # received's on_exit effect


def test_leaving_a_compound_state_exits_leaf_then_parent(ticket: StateMachine) -> None:
    r = ticket.process("expert", "solve", {})
    assert r.target_state == "resolved"
    assert r.states_exited == ("expert", "handling")
    assert r.states_entered == ("resolved",)
    assert r.all_actions == ("leave_handling",)
    assert ticket.active_states("working") == {"working", "handling"}


def test_sibling_moves_stay_inside_the_parent(ticket: StateMachine) -> None:
    r = ticket.process("queued", "pick", {"touches": 4})
    assert (r.states_exited, r.states_entered) == (("queued",), ("working",))
    assert r.all_actions == ("leave_queue",)
    assert r.context == {"touches": 5}


def test_the_session_stores_the_leaf(ticket: StateMachine) -> None:
    session = ticket.create(context={"ticket_id": "T-2"})
    session.accept()
    session.pick()
    assert session.current_state == "working"
    assert session.is_in("handling") and session.is_working
    assert session.context == {"ticket_id": "T-2", "stage": "accepted", "touches": 1}


def test_initial_child_must_be_a_child() -> None:
    doc = load(TICKET_YAML)
    doc["states"][1]["initial_child"] = "resolved"
    assert "states[1].initial_child: 'resolved' is not a child of 'handling'" in problems(doc)
    doc["states"][1]["initial_child"] = "escalation"
    doc["states"][5]["parent"] = "handling"
    assert any("is a choice state" in p for p in problems(doc))


# --- parallel states: the documented name-list form and pystator's nested form --------------


@pytest.mark.parametrize(
    "text", [PARALLEL_NAMES_YAML, PARALLEL_NESTED_YAML], ids=["names", "nested"]
)
def test_parallel_regions_in_both_forms(text: str) -> None:
    m = StateMachine.from_dict(load(text))
    assert m.states == ("idle", "trading", "scanning", "placing", "calm", "alarmed", "halted")
    start = m.process("idle", "start", {})
    assert start.target_state == "trading[orders=scanning,risk=calm]"
    assert start.states_exited == ("idle",)
    assert start.states_entered == ("trading", "scanning", "calm")
    assert start.all_actions == ("leave_idle", "open_session", "start_scan")

    found = m.process(start.target_state, "found", {})
    assert found.target_state == "trading[orders=placing,risk=calm]"
    assert (found.states_exited, found.states_entered) == (("scanning",), ("placing",))
    assert found.all_actions == ("stop_scan", "place_order")
    assert found.context == {"placed": 1}

    spike = m.process(found.target_state, "spike", {})
    assert spike.target_state == "trading[orders=placing,risk=alarmed]"
    assert spike.all_actions == ("leave_calm", "raise_alarm")

    halt = m.process(spike.target_state, "halt", {})
    assert halt.target_state == "halted"
    assert halt.states_exited == ("alarmed", "placing", "trading")
    assert halt.all_actions == ("close_session",)


@pytest.mark.parametrize(
    "text", [PARALLEL_NAMES_YAML, PARALLEL_NESTED_YAML], ids=["names", "nested"]
)
def test_any_source_scoped_to_a_region(text: str) -> None:
    m = StateMachine.from_dict(load(text))
    settle = next(t for t in m.transitions if t.trigger == "settle")
    assert settle.any_source and settle.sources == ("calm", "alarmed") and settle.region == "risk"
    r = m.process("trading[orders=scanning,risk=alarmed]", "settle", {})
    assert r.target_state == "trading[orders=scanning,risk=calm]"
    assert (r.states_exited, r.states_entered) == (("alarmed",), ("calm",))


def test_both_region_forms_store_the_same_configurations() -> None:
    names = StateMachine.from_dict(load(PARALLEL_NAMES_YAML)).create()
    nested = StateMachine.from_dict(load(PARALLEL_NESTED_YAML)).create()
    for trigger in ("start", "found", "spike", "settle", "filled", "spike", "halt"):
        a, b = names.send(trigger), nested.send(trigger)
        assert (a.target_state, a.all_actions) == (b.target_state, b.all_actions)
        assert names.current_state == nested.current_state
        assert names.context == nested.context
    assert names.current_state == "halted"
    assert names.context == {"placed": 1}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["states"][1]["regions"][0]["states"].append("ghost"),
            "unknown state 'ghost' in region 'orders'",
        ),
        (
            lambda d: d["states"][1]["regions"][1]["states"].append("scanning"),
            "already listed in region 'orders'",
        ),
        (
            lambda d: d["states"].append({"name": "stray", "parent": "trading"}),
            "list 'stray' in one of its regions' states",
        ),
        (lambda d: d["states"][2].update(parent="idle"), "declares parent 'idle'"),
        (
            lambda d: d["transitions"][1].update(region="risk"),
            "source 'scanning' is not a state of region 'risk'",
        ),
        (lambda d: d["transitions"][1].update(region="nowhere"), "unknown region 'nowhere'"),
        (
            lambda d: d["states"][1]["regions"][1].update(name="orders"),
            "region name 'orders' is already used",
        ),
    ],
)
def test_region_mistakes_are_named(change: Any, expected: str) -> None:
    doc = load(PARALLEL_NAMES_YAML)
    change(doc)
    found = problems(doc)
    assert any(expected in p for p in found), found


# --- types, timeout, when, group, invoke, metadata ------------------------------------------


def test_error_state_is_an_ordinary_state_and_star_covers_it(ticket: StateMachine) -> None:
    assert ticket.process("broken", "archive").target_state == "archived"
    archive = next(t for t in ticket.transitions if t.trigger == "archive")
    assert archive.sources == ("received", "handling", "resolved", "broken")  # no choice/terminal


def test_choice_routes_by_its_first_passing_branch(ticket: StateMachine) -> None:
    high = ticket.process("working", "escalate", {"severity": "high"})
    assert high.target_state == "expert"
    assert (high.states_exited, high.states_entered) == (("working",), ("expert",))
    assert high.all_actions == ("pause_work", "notify_expert", "page_expert")
    assert high.context == {"severity": "high", "escalations": ["manual"]}
    low = ticket.process("working", "escalate", {"severity": "low"})
    assert low.target_state == "queued" and low.all_actions == ("pause_work",)
    assert not ticket.has_state("nowhere") and "escalate" in ticket.allowed_triggers("working")


def test_choice_state_rules() -> None:
    doc = load(TICKET_YAML)
    doc["states"][5]["on_enter"] = ["x"]
    doc["transitions"][3]["trigger"] = "go"
    found = problems(doc)
    assert any("choice state 'escalation' is never rested in" in p for p in found)
    assert any("transitions[3].trigger: transitions out of choice state" in p for p in found)
    lonely = load(TICKET_YAML)
    lonely["transitions"] = [t for t in lonely["transitions"] if t.get("source") != "escalation"]
    assert any("needs at least one outgoing transition" in p for p in problems(lonely))


def test_timeout_documented_form_arms_a_timer() -> None:
    doc = load(TICKET_YAML)
    doc["states"][2]["timeout"] = {"seconds": 1.5, "destination": "broken"}
    m = StateMachine.from_dict(doc)
    (timer,) = m.process("received", "accept", {"ticket_id": "x"}).timers_to_arm
    assert (timer.state, timer.delay_ms, timer.trigger) == ("queued", 1500, "timeout")
    assert m.process("queued", "timeout").target_state == "broken"


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        ({"seconds": 0, "destination": "broken"}, "must be a number of seconds > 0"),
        ({"seconds": 5}, "timeout.destination: missing"),
        ({"seconds": 5, "destination": "nowhere"}, "timeout.destination: unknown state 'nowhere'"),
        ({"seconds": 5, "after": "5s", "destination": "broken"}, "either 'seconds' or 'after'"),
    ],
)
def test_timeout_mistakes(timeout: dict[str, Any], expected: str) -> None:
    doc = load(TICKET_YAML)
    doc["states"][2]["timeout"] = timeout
    assert any(expected in p for p in problems(doc))


def test_when_classifies_a_context_into_a_state() -> None:
    doc = load(TICKET_YAML)
    doc["states"][6]["when"] = [{"field": "solution", "op": "is_set"}]
    doc["states"][4]["when"] = [
        {"field": "severity", "op": "eq", "value": "critical"},
        {"check": {"field": "staffed", "op": "eq", "value": True}},
    ]
    m = StateMachine.from_dict(doc)
    assert m.classify({"severity": "critical", "staffed": True}) == "expert"
    assert m.classify({"severity": "critical", "solution": "reboot"}) == "resolved"
    assert m.classify({}) is None
    doc["states"][4]["when"] = [{"field": "severity", "op": "around", "value": 1}]
    assert any("states[4].when[0].op: unknown operator 'around'" in p for p in problems(doc))


def test_groups_invoke_and_metadata_are_kept_for_tools(ticket: StateMachine) -> None:
    assert [(g.name, g.description) for g in ticket.definition.groups] == [
        ("active", "Being worked on"),
        ("finished", None),
    ]
    assert ticket.definition.states[0].group == "active"
    doc = load(TICKET_YAML)
    doc["states"][0]["invoke"] = ["fetch_customer", {"service": "crm"}]
    doc["states"][0]["metadata"] = {"context_keys": ["ticket_id"]}
    doc["states"][0]["description"] = "Just arrived"
    state = StateMachine.from_dict(doc).definition.states[0]
    assert state.invoke == ("fetch_customer", {"service": "crm"})
    assert state.metadata == {"context_keys": ["ticket_id"]}
    doc["states"][0]["group"] = "closed"
    assert "states[0].group: unknown group 'closed' (define it under groups:)" in problems(doc)


def test_documented_names_load_lower_case_digits_first() -> None:
    m = StateMachine.from_dict(
        {
            "states": [
                {"name": "2fa_sent", "type": "initial"},
                {"name": "3ds_ok", "type": "terminal"},
            ],
            "transitions": [{"trigger": "1st_code", "source": "2fa_sent", "dest": "3ds_ok"}],
        }
    )
    assert m.process("2fa_sent", "1st_code").target_state == "3ds_ok"
    assert m.name == "unnamed"


def test_a_lone_nested_initial_state_is_where_the_machine_starts() -> None:
    doc = {
        "states": [
            {"name": "booting"},
            {"name": "firmware", "parent": "booting"},
            {"name": "self_test", "parent": "firmware", "type": "initial"},
            {"name": "ready", "type": "terminal"},
        ],
        "transitions": [{"trigger": "pass", "source": "self_test", "dest": "ready"}],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the documented meaning: no deprecation
        m = StateMachine.from_dict(doc)
    assert m.get_initial_state() == "self_test"
    assert m.active_states("self_test") == {"booting", "firmware", "self_test"}
    assert m.create().send("pass").states_exited == ("self_test", "firmware", "booting")
