"""Property-based: random and mutated definitions, states, triggers and contexts.

Whatever is thrown at the loader or at ``process``, nothing but :class:`FSMError` escapes. The
definitions mutated include machines in the documented schema (checks, composites, effects,
branches, choice states, ``"*"``, regions by name, error policies, contracts), and mutations
splice in fragments of those keys anywhere.
"""

from __future__ import annotations

import contextlib
import copy
import json
import warnings
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pystator import (
    DefinitionDeprecationWarning,
    DefinitionWarning,
    FSMError,
    InMemoryStateStore,
    Orchestrator,
    StateMachine,
    lint,
)
from tests.engine.test_engine_hierarchy import HIERARCHY, PARALLEL
from tests.support.declarative_machines import (
    PARALLEL_NAMES_YAML,
    TICKET_YAML,
    decl_order,
    load,
)

DOCUMENTED = [load(TICKET_YAML), load(PARALLEL_NAMES_YAML), decl_order()]
MACHINES = [HIERARCHY, PARALLEL, *DOCUMENTED]

#: Fragments of the documented schema's keys, spliced into mutated definitions.
FRAGMENTS: list[Any] = [
    "*",
    {"check": {"field": "qty", "op": "gt", "value": 0}},
    {"check": {"field": "qty", "op": "in", "values": [1, "a", None]}},
    {"check": {"field": "qty", "op": "is_set", "value": 1}},
    {
        "allOf": [
            {"expr": "qty > 1"},
            "positive",
            {"not": {"check": {"field": "x", "op": "is_null"}}},
        ]
    },
    {"anyOf": []},
    {"set": {"phase": "x", "nested": {"a": [1, 2]}}},
    {"increment": "qty"},
    {"decrement": "reviews"},
    {"append": {"field": "trail", "value": "z"}},
    {"clear": "total"},
    {"timestamp": "at"},
    {"compute": {"total": "qty * price", "bad": "1 / 0"}},
    {
        "branch": {
            "when": {"field": "qty", "op": "lt", "value": 5},
            "then": [{"set": {"small": True}}],
            "else": ["big"],
        }
    },
    {"name": "key_present", "params": {"key": "qty"}, "when": "qty > 2", "retry": 1},
    {"http": {"url": "https://example.test/{{ qty }}"}},
    {"seconds": 2, "destination": "review"},
    {"default_fallback": "draft", "retry_attempts": 1},
    {"name": "r", "initial": "review", "states": ["review", "approved"]},
    {"key": "qty", "type": "number", "required": True},
    {"name": "rule", "field": "qty", "op": "gte", "value": 0},
    {"active": {"description": "grouped"}},
    "choice",
    "error",
    "initial_child",
    {"after": "1s", "source": "review", "dest": "draft"},
    {"source": "escalation", "dest": "queued", "region": "orders"},
]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Deprecated forms created by mutation warn; that is not what these properties test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DefinitionDeprecationWarning)
        warnings.simplefilter("ignore", DefinitionWarning)
        yield


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True),
    st.text(max_size=12),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
names = st.sampled_from(
    ["idle", "working", "a", "b", "done", "run", "x1", "x2", "y1", "y2", "off", "end", "x", "?"]
)
triggers = st.sampled_from(
    [
        *("start", "stop", "inner", "again", "note", "finish", "on", "go", "jump", "halt", "deep"),
        *("zzz", "accept", "pick", "escalate", "solve", "reopen", "archive", "_after_7"),
        *("_choice_3", "found", "filled", "spike", "settle", "submit", "revise", "approve"),
    ]
)
contexts = st.one_of(
    json_like,
    st.fixed_dictionaries(
        {},
        optional={
            "qty": scalars,
            "price": scalars,
            "budget_left": scalars,
            "reviews": scalars,
            "trail": json_like,
            "total": scalars,
            "ticket_id": scalars,
            "severity": st.sampled_from(["high", "low", None, 3]),
            "reopen_count": scalars,
            "touches": scalars,
            "placed": scalars,
        },
    ),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found.extend(_paths(value, (*prefix, i)))
    return found


@st.composite
def mutated_definitions(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(MACHINES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(json_like)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "name", "fragment", "fragment"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "name":
            parent[path[-1]] = draw(names)
        elif action == "fragment":
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(FRAGMENTS)))
        else:
            parent[path[-1]] = draw(json_like)
    return doc


@SETTINGS
@given(mutated_definitions(), contexts)
def test_loader_raises_only_fsm_errors(doc: Any, context: Any) -> None:
    try:
        with quiet():
            machine = StateMachine.from_dict(doc)
    except FSMError:
        return
    initial = machine.get_initial_state()
    for trigger in machine.triggers:
        with contextlib.suppress(FSMError):
            machine.process(initial, trigger, context)
    lint(machine)


@SETTINGS
@given(json_like)
def test_random_documents_raise_only_fsm_errors(doc: Any) -> None:
    with contextlib.suppress(FSMError), quiet():
        StateMachine.from_dict(doc)


@SETTINGS
@given(
    st.sampled_from(MACHINES),
    st.one_of(
        names,
        st.sampled_from(
            ["queued", "working", "escalation", "trading[orders=placing,risk=calm]", "review"]
        ),
        st.text(max_size=20),
        json_like,
        st.just("run[x=x1,y=y2]"),
    ),
    st.one_of(triggers, json_like),
    contexts,
)
def test_process_raises_only_fsm_errors(doc: Any, state: Any, trigger: Any, context: Any) -> None:
    machine = StateMachine.from_dict(doc)
    try:
        result = machine.process(state, trigger, context)
    except FSMError:
        return
    assert result.success == (result.target_state is not None)
    if result.success:
        assert machine.has_state(result.target_state)
        assert result.context is None or isinstance(result.context, dict)


def _outcome(call: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``success`` of the call's result, or the type of the FSMError it raised."""
    try:
        return call(*args, **kwargs).success
    except FSMError as exc:
        return type(exc)


def _payload(value: Any) -> dict[str, Any]:
    """A payload ``send(trigger, **payload)`` accepts (a mapping without a ``trigger`` key)."""
    return {k: v for k, v in value.items() if k != "trigger"} if isinstance(value, dict) else {}


@SETTINGS
@given(st.lists(st.tuples(triggers, contexts), max_size=20))
def test_any_event_sequence_keeps_a_valid_configuration(sequence: list[tuple[str, Any]]) -> None:
    for doc in MACHINES:
        session = StateMachine.from_dict(doc).create()
        for trigger, payload in sequence:
            with contextlib.suppress(FSMError):
                session.send(trigger, **_payload(payload))
            assert session.machine.has_state(session.current_state)
            assert isinstance(session.context, dict)


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["submit", "revise", "approve", "zzz"]), contexts), max_size=8
    )
)
def test_the_orchestrator_and_the_session_agree_on_any_sequence(
    sequence: list[tuple[str, Any]],
) -> None:
    machine = StateMachine.from_dict(decl_order())
    session = machine.create()
    store = InMemoryStateStore()
    orchestrator = Orchestrator(machine=machine, state_store=store)
    for trigger, payload in sequence:
        payload = _payload(payload)
        outcomes = [
            _outcome(session.send, trigger, **payload),
            _outcome(orchestrator.process_event, "e", trigger, payload),
        ]
        assert _same(outcomes[0], outcomes[1])
        record = store.load(machine.name, "e")
        if record is not None:
            assert _same(
                (record.state, dict(record.context)), (session.current_state, session.context)
            )


def _same(left: Any, right: Any) -> bool:
    """Equal, counting a NaN equal to a NaN (payloads may carry one; ``nan != nan``)."""
    return json.dumps(left, sort_keys=True, default=repr) == json.dumps(
        right, sort_keys=True, default=repr
    )
