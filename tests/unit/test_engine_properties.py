"""Property-based: random and mutated definitions, states, triggers and contexts.

Whatever is thrown at the loader or at ``process``, nothing but :class:`FSMError` escapes.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pystator import FSMError, StateMachine
from tests.unit.test_engine_hierarchy import HIERARCHY, PARALLEL

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
    ["start", "stop", "inner", "again", "note", "finish", "on", "go", "jump", "halt", "deep", "zzz"]
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
    doc = copy.deepcopy(draw(st.sampled_from([HIERARCHY, PARALLEL])))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(json_like)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "name"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "name":
            parent[path[-1]] = draw(names)
        else:
            parent[path[-1]] = draw(json_like)
    return doc


@SETTINGS
@given(mutated_definitions())
def test_loader_raises_only_fsm_errors(doc: Any) -> None:
    try:
        machine = StateMachine.from_dict(doc)
    except FSMError:
        return
    initial = machine.get_initial_state()
    for trigger in machine.triggers:
        with contextlib.suppress(FSMError):
            machine.process(initial, trigger, {})


@SETTINGS
@given(json_like)
def test_random_documents_raise_only_fsm_errors(doc: Any) -> None:
    with contextlib.suppress(FSMError):
        StateMachine.from_dict(doc)


@SETTINGS
@given(
    st.sampled_from([HIERARCHY, PARALLEL]),
    st.one_of(names, st.text(max_size=20), json_like, st.just("run[x=x1,y=y2]")),
    st.one_of(triggers, json_like),
    json_like,
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


@SETTINGS
@given(st.lists(triggers, max_size=20))
def test_any_event_sequence_keeps_a_valid_configuration(sequence: list[str]) -> None:
    for doc in (HIERARCHY, PARALLEL):
        session = StateMachine.from_dict(doc).create()
        for trigger in sequence:
            session.send(trigger)
            assert session.machine.has_state(session.current_state)
