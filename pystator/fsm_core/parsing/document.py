"""The whole document: ``meta``, ``groups``, ``error_policy``, the context contract, ``events``,
then the states and transitions (read by their own modules)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

from pystator.fsm_core.definition import (
    DEFAULT_MACHINE_NAME,
    DEFAULT_VERSION,
    ContextInvariant,
    ErrorPolicy,
    EventDoc,
    FallbackMode,
    GroupSpec,
    MachineDefinition,
    MachineMeta,
    StateKind,
    StateSpec,
    StateVariable,
)
from pystator.fsm_core.document_size import oversize
from pystator.fsm_core.errors import ConfigProblem
from pystator.fsm_core.limits import MAX_FIELD_LENGTH, MAX_STATES
from pystator.fsm_core.parsing.actions import ActionParser
from pystator.fsm_core.parsing.conditions import ConditionParser
from pystator.fsm_core.parsing.reader import Reader, join, near_miss, type_name
from pystator.fsm_core.parsing.states import StateParser
from pystator.fsm_core.parsing.transitions import TransitionParser
from pystator.fsm_core.when import ClassificationSettings

TOP_KEYS = frozenset(
    {
        "meta",
        "states",
        "transitions",
        "groups",
        "error_policy",
        "state_variables",
        "context_invariants",
        "events",
        # pystator's own
        "description",
        "metadata",
    }
)
META_KEYS = frozenset(
    {
        "machine_name",
        "version",
        "strict_mode",
        "reject_invalid_events",
        "strict_guard_registry",
        "event_normalizer",
        "description",
        "validate_context",
        "orchestrator_default_fallback",
        "classification",
        "metadata",
    }
)
CLASSIFICATION_KEYS = frozenset(
    {"entity_id_field", "timestamp_field", "source", "default_state", "auto_route"}
)
ERROR_POLICY_KEYS = frozenset({"default_fallback", "retry_attempts"})
IGNORED_ERROR_POLICY_KEYS = {
    "strict_mode": "use meta.strict_mode",
    "on_invalid_trigger": "it was never implemented; see meta.reject_invalid_events",
}
VARIABLE_KEYS = frozenset({"key", "type", "description", "default", "required"})
VARIABLE_TYPES = ("string", "number", "boolean", "object")
INVARIANT_KEYS = frozenset({"name", "check", "description", "field", "op", "value", "values"})
EVENT_KEYS = frozenset({"name", "description", "payload"})
NORMALIZERS = ("lower", "upper")


class DocumentParser:
    """Parses one document; :meth:`parse` returns the definition and every problem found."""

    def __init__(self, default_name: str | None = None) -> None:
        self.r = Reader()
        self.conditions = ConditionParser(self.r)
        self.actions = ActionParser(self.r, self.conditions)
        self.states = StateParser(self.r, self.conditions, self.actions)
        self.default_name = default_name or DEFAULT_MACHINE_NAME

    def parse(self, raw: Any) -> MachineDefinition | None:
        """The definition (None when ``raw`` is not a mapping); problems are on ``self.r``."""
        if not isinstance(raw, Mapping):
            self.r.problem("", f"a machine definition must be a mapping, got {type_name(raw)}")
            return None
        self.r.unknown_keys(raw, TOP_KEYS, "")
        meta = self.meta(raw.get("meta"))
        policy = self.error_policy(raw.get("error_policy"), meta)
        self._states(raw)
        if len(self.states.states) > MAX_STATES:
            self.r.problem(
                "states",
                f"{len(self.states.states):,} states; a machine may have at most {MAX_STATES:,}",
            )
        self.states.resolve()
        self._initial_markers()
        transitions = TransitionParser(
            self.r, self.conditions, self.actions, self.states.states
        ).transitions(raw.get("transitions"))
        return MachineDefinition(
            meta=meta,
            states=tuple(sorted(self.states.states, key=lambda s: _document_order(s.path))),
            transitions=transitions,
            regions=tuple(self.states.regions),
            groups=self.groups(raw.get("groups")),
            error_policy=policy,
            state_variables=self.state_variables(raw.get("state_variables")),
            invariants=self.invariants(raw.get("context_invariants")),
            events=self.events(raw.get("events")),
            document=raw,
        )

    def _states(self, raw: Mapping[str, Any]) -> None:
        if "states" not in raw:
            self.r.problem("states", "missing: a machine needs at least one state")
            return
        if isinstance(raw["states"], list) and not raw["states"]:
            self.r.problem("states", "must list at least one state")
        self.states.state_list(raw["states"], "states", None)

    def _initial_markers(self) -> None:
        """pystator's ``type: initial`` on a child: still honoured, deprecated.

        The documented meaning comes first: when the machine has no top-level initial state and
        exactly one state is ``type: initial``, the machine starts *in* that state (its top-level
        ancestor is entered down to it); that marker is not a deprecated form.
        """
        started = self._start_inside()
        regions = {r.name for r in self.states.regions}
        for state in self.states.states:
            if state.kind is not StateKind.INITIAL or state.parent is None:
                continue
            if state.name == started:
                continue
            if state.parent in regions:
                fix = f"set 'initial: {state.name}' on region {state.parent!r}"
            else:
                fix = f"set 'initial_child: {state.name}' on {state.parent!r}"
            self.r.deprecated(
                join(state.path, "type"),
                f"marking a child state 'type: initial' is deprecated (the documented schema has "
                f"one initial state per machine): {fix} and make the child 'stable'",
            )

    def _start_inside(self) -> str | None:
        """Make the top-level ancestor of a lone nested initial state the machine's start."""
        states = self.states.states
        if any(s.machine_initial and s.parent is None for s in states):
            return None
        marked = [s for s in states if s.kind is StateKind.INITIAL]
        if len(marked) != 1 or marked[0].parent is None:
            return None
        index = {s.name: i for i, s in reversed(list(enumerate(states)))}
        chain = [marked[0].name]
        parent: str | None = marked[0].parent
        while parent is not None:
            if parent not in index or parent in chain:  # a region (or a cycle): not this case
                return None
            chain.append(parent)
            parent = states[index[parent]].parent
        for child, owner in itertools.pairwise(chain):
            state = states[index[owner]]
            if state.initial_child is None:
                states[index[owner]] = dataclasses.replace(state, initial_child=child)
        top = index[chain[-1]]
        states[top] = dataclasses.replace(states[top], machine_initial=True)
        return marked[0].name

    # meta -----------------------------------------------------------------------------------

    def meta(self, raw: Any) -> MachineMeta:
        """The ``meta`` block (optional; extra keys are allowed, likely typos are not)."""
        if raw is None:
            return MachineMeta(name=self.default_name)
        data = self.r.mapping(raw, "meta", "meta")
        if data is None:
            return MachineMeta(name=self.default_name)
        for key in data:
            if key not in META_KEYS and isinstance(key, str):
                guess = near_miss(key, META_KEYS)
                if guess is not None:
                    self.r.problem(f"meta.{key}", f"unknown key: did you mean {guess!r}?")
        strict = self.r.boolean(data, "strict_mode", "meta", True)
        name = self.default_name
        if data.get("machine_name") is not None:
            name = self.r.name(data["machine_name"], "meta.machine_name", "machine name") or name
        return MachineMeta(
            name=name,
            version=self._version(data.get("version", DEFAULT_VERSION)),
            strict_mode=strict,
            reject_invalid_events=_pick(
                self.r.optional_boolean(data, "reject_invalid_events", "meta"), strict
            ),
            strict_guard_registry=_pick(
                self.r.optional_boolean(data, "strict_guard_registry", "meta"), strict
            ),
            event_normalizer=self._normalizer(data.get("event_normalizer")),
            validate_context=self.validate_context(data.get("validate_context")),
            check_contract=data.get("validate_context") is True,
            description=self.r.optional_text(data, "description", "meta"),
            classification=self.classification(data.get("classification")),
            raw=dict(data),
        )

    def classification(self, raw: Any) -> ClassificationSettings | None:
        """``meta.classification``: how data records are classified (None when absent)."""
        path = "meta.classification"
        if raw is None:
            return None
        data = self.r.mapping(raw, path, "classification settings")
        if data is None:
            return None
        self.r.unknown_keys(data, CLASSIFICATION_KEYS, path)
        settings = ClassificationSettings()
        default_state = data.get("default_state")
        if default_state is not None:
            default_state = self.r.name(default_state, f"{path}.default_state", "state name")
        return ClassificationSettings(
            entity_id_field=self._record_field(data, "entity_id_field", None)
            or settings.entity_id_field,
            timestamp_field=self._record_field(data, "timestamp_field", None),
            source=self._record_field(data, "source", settings.source) or settings.source,
            default_state=default_state,
            auto_route=self.r.boolean(data, "auto_route", path, False),
        )

    def _record_field(self, data: Mapping[str, Any], key: str, default: str | None) -> str | None:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value or len(value) > MAX_FIELD_LENGTH:
            self.r.problem(
                f"meta.classification.{key}",
                f"must be a string of 1 to {MAX_FIELD_LENGTH} characters, got {value!r}",
            )
            return default
        return value

    def _version(self, version: Any) -> str:
        if not isinstance(version, str | int | float) or isinstance(version, bool):
            self.r.problem("meta.version", f"must be a string, got {type_name(version)}")
            return DEFAULT_VERSION
        return str(version)

    def _normalizer(self, raw: Any) -> str | None:
        if raw is None or raw in NORMALIZERS:
            return raw  # type: ignore[no-any-return]
        self.r.problem(
            "meta.event_normalizer", f"must be one of {', '.join(NORMALIZERS)}, got {raw!r}"
        )
        return None

    def validate_context(self, raw: Any) -> Mapping[str, tuple[str, ...]]:
        """pystator's required-key form: ``[keys]`` or ``{STATE: [keys], "*": [keys]}``."""
        path = "meta.validate_context"
        if raw is None or isinstance(raw, bool):
            return {}
        if isinstance(raw, list):
            keys = self._keys(raw, path)
            return {"*": keys} if keys else {}
        data = self.r.mapping(raw, path, "validate_context (true, a list of keys or STATE: [keys])")
        if data is None:
            return {}
        result: dict[str, tuple[str, ...]] = {}
        for state, keys in data.items():
            if not isinstance(keys, list):
                self.r.problem(f"{path}.{state}", f"must be a list of keys, got {type_name(keys)}")
                continue
            result[str(state)] = self._keys(keys, f"{path}.{state}")
        return result

    def _keys(self, raw: list[Any], path: str) -> tuple[str, ...]:
        keys = []
        for i, key in enumerate(raw):
            if isinstance(key, str) and key:
                keys.append(key)
            else:
                self.r.problem(f"{path}[{i}]", f"a context key must be a non-empty string: {key!r}")
        return tuple(keys)

    # the other top-level sections -----------------------------------------------------------

    def error_policy(self, raw: Any, meta: MachineMeta) -> ErrorPolicy:
        """``error_policy`` plus ``meta.orchestrator_default_fallback``."""
        mode = self._mode(meta.raw.get("orchestrator_default_fallback"))
        if raw is None:
            return ErrorPolicy(mode=mode)
        data = self.r.mapping(raw, "error_policy", "error_policy")
        if data is None:
            return ErrorPolicy(mode=mode)
        for key, why in IGNORED_ERROR_POLICY_KEYS.items():
            if key in data:
                self.r.note(f"error_policy.{key}", f"ignored by the engine: {why}")
        self.r.unknown_keys(
            data, ERROR_POLICY_KEYS | set(IGNORED_ERROR_POLICY_KEYS), "error_policy"
        )
        fallback = data.get("default_fallback")
        if fallback is not None:
            fallback = self.r.name(fallback, "error_policy.default_fallback", "fallback state")
        return ErrorPolicy(
            default_fallback=fallback,
            retry_attempts=self.r.count(data, "retry_attempts", "error_policy"),
            mode=mode,
        )

    def _mode(self, raw: Any) -> FallbackMode:
        if raw is None:
            return FallbackMode.OFF
        try:
            return FallbackMode(raw)
        except ValueError:
            modes = ", ".join(m.value for m in FallbackMode)
            self.r.problem(
                "meta.orchestrator_default_fallback", f"must be one of {modes}, got {raw!r}"
            )
            return FallbackMode.OFF

    def groups(self, raw: Any) -> tuple[GroupSpec, ...]:
        """``groups: {name: {description}}``."""
        if raw is None:
            return ()
        data = self.r.mapping(raw, "groups", "groups (group name: {description})")
        if data is None:
            return ()
        found = []
        for key, value in data.items():
            path = f"groups.{key}"
            name = self.r.name(key, path, "group name")
            body = {} if value is None else self.r.mapping(value, path, "a group")
            if body is None or name is None:
                continue
            self.r.unknown_keys(body, frozenset({"description"}), path)
            found.append(
                GroupSpec(name=name, description=self.r.optional_text(body, "description", path))
            )
        return tuple(found)

    def state_variables(self, raw: Any) -> tuple[StateVariable, ...]:
        """``state_variables``: names (short form) or ``{key, type, required, default, …}``."""
        found: list[StateVariable] = []
        seen: dict[str, str] = {}
        for item, path in self._list(raw, "state_variables"):
            variable = self._variable(item, path)
            if variable is None:
                continue
            if variable.key in seen:
                self.r.problem(
                    f"{path}.key",
                    f"duplicate state variable {variable.key!r} (first at {seen[variable.key]})",
                )
                continue
            seen[variable.key] = path
            found.append(variable)
        return tuple(found)

    def _variable(self, item: Any, path: str) -> StateVariable | None:
        if isinstance(item, str):
            return StateVariable(key=item) if item else None
        data = self.r.mapping(item, path, "a state variable (a key or {key, type, …})")
        if data is None:
            return None
        self.r.unknown_keys(data, VARIABLE_KEYS, path)
        key = data.get("key")
        if not isinstance(key, str) or not key:
            self.r.problem(f"{path}.key", "missing: a state variable needs a 'key'")
            return None
        kind = data.get("type")
        if kind is not None and kind not in VARIABLE_TYPES:
            self.r.problem(
                f"{path}.type", f"must be one of {', '.join(VARIABLE_TYPES)}, got {kind!r}"
            )
            kind = None
        return StateVariable(
            key=key,
            type=kind,
            required=self.r.boolean(data, "required", path, False),
            default=data.get("default"),
            has_default="default" in data,
            description=self.r.optional_text(data, "description", path),
        )

    def invariants(self, raw: Any) -> tuple[ContextInvariant, ...]:
        """``context_invariants``: ``{name, check: {…}}`` or ``{name, field, op, value}``."""
        found = []
        for item, path in self._list(raw, "context_invariants"):
            data = self.r.mapping(item, path, "a context invariant")
            if data is None:
                continue
            self.r.unknown_keys(data, INVARIANT_KEYS, path)
            inline = {k: data[k] for k in ("field", "op", "value", "values") if k in data}
            if ("check" in data) == bool(inline):
                self.r.problem(
                    path,
                    "an invariant needs either 'check: {field, op, value}' or inline field/op/value",
                )
                continue
            check = (
                self.conditions.check(data["check"], f"{path}.check")
                if "check" in data
                else self.conditions.check(inline, path)
            )
            name = data.get("name", path)
            if not isinstance(name, str) or not name:
                self.r.problem(f"{path}.name", "must be a non-empty string")
                continue
            if check is not None:
                found.append(
                    ContextInvariant(
                        name=name,
                        check=check,
                        path=path,
                        description=self.r.optional_text(data, "description", path),
                    )
                )
        return tuple(found)

    def events(self, raw: Any) -> tuple[EventDoc, ...]:
        """``events`` (documentation only)."""
        found = []
        for item, path in self._list(raw, "events"):
            data = self.r.mapping(item, path, "an event")
            if data is None:
                continue
            self.r.unknown_keys(data, EVENT_KEYS, path)
            name = self.r.name(data.get("name"), f"{path}.name", "event name")
            if name is not None:
                found.append(
                    EventDoc(
                        name=name,
                        description=self.r.optional_text(data, "description", path),
                        payload=data.get("payload"),
                    )
                )
        return tuple(found)

    def _list(self, raw: Any, path: str) -> list[tuple[Any, str]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.r.problem(path, f"must be a list, got {type_name(raw)}")
            return []
        return [(item, f"{path}[{i}]") for i, item in enumerate(raw)]


def _pick(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def parse_definition(
    raw: Any, *, default_name: str | None = None
) -> tuple[MachineDefinition | None, list[ConfigProblem], list[ConfigProblem], list[ConfigProblem]]:
    """Parse a raw document: the definition (None if unusable), problems, deprecations, notes."""
    too_large = oversize(raw)
    if too_large is not None:
        return None, [too_large], [], []
    parser = DocumentParser(default_name)
    definition = parser.parse(raw)
    return definition, parser.r.problems, parser.r.deprecations, parser.r.notes


def _document_order(path: str) -> tuple[int, ...]:
    """Sort key that puts states in document order (parents before their children)."""
    out: list[int] = []
    number = ""
    inside = False
    for ch in path:
        if ch == "[":
            inside, number = True, ""
        elif ch == "]":
            inside = False
            out.append(int(number))
        elif inside:
            number += ch
    return tuple(out)


__all__ = ["DocumentParser", "StateSpec", "parse_definition"]
