"""The frozen machine definition: what a YAML/JSON document says, checked for shape.

:func:`parse_definition` turns a raw mapping into a :class:`MachineDefinition` and collects
every shape problem (wrong type, missing key, bad delay, bad expression) with its path, so a
user sees all of them at once. Cross-references (unknown states, initial states, terminal
states with transitions …) are checked afterwards by :mod:`pystator.fsm_core.validation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pystator.fsm_core.delays import DelayError, parse_delay
from pystator.fsm_core.errors import ConfigProblem, ConfigurationError
from pystator.fsm_core.expressions import CompiledExpression, compile_expression
from pystator.fsm_core.naming import describe_name_problem

DEFAULT_VERSION = "1.0.0"
DEFAULT_TIMEOUT_TRIGGER = "timeout"


class StateKind(str, Enum):
    """The ``type`` of a state."""

    INITIAL = "initial"
    STABLE = "stable"
    TERMINAL = "terminal"
    PARALLEL = "parallel"


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardSpec:
    """A named guard (``is_full_fill``) or an inline expression (``expr: qty > 0``)."""

    name: str | None = None
    expression: CompiledExpression | None = None

    @property
    def label(self) -> str:
        """How the guard is named in results and errors."""
        if self.expression is not None:
            return f"expr: {self.expression.source}"
        return self.name or ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSpec:
    """A named action with its ``params`` from the definition."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutSpec:
    """A state ``timeout:``: after ``delay_ms`` in the state, ``trigger`` moves it to ``dest``."""

    delay_ms: int
    dest: str
    trigger: str
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionSpec:
    """One orthogonal region of a parallel state."""

    name: str
    initial: str | None
    states: tuple[str, ...]
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StateSpec:
    """One state. ``parent`` is a state or (for a region's states) a region name."""

    name: str
    kind: StateKind
    path: str
    parent: str | None = None
    machine_initial: bool = False
    initial_child: str | None = None
    on_enter: tuple[ActionSpec, ...] = ()
    on_exit: tuple[ActionSpec, ...] = ()
    timeout: TimeoutSpec | None = None
    regions: tuple[RegionSpec, ...] = ()
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionSpec:
    """One transition rule: on ``trigger`` from any of ``sources`` to ``dest``."""

    trigger: str
    sources: tuple[str, ...]
    dest: str
    path: str
    index: int
    guards: tuple[GuardSpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    after_ms: int | None = None
    internal: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineMeta:
    """The ``meta`` block."""

    name: str
    version: str = DEFAULT_VERSION
    strict_mode: bool = True
    validate_context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineDefinition:
    """A whole machine: meta, every state (nested ones flattened, in document order), rules."""

    meta: MachineMeta
    states: tuple[StateSpec, ...]
    transitions: tuple[TransitionSpec, ...]
    regions: tuple[RegionSpec, ...] = ()


# --- the parser ----------------------------------------------------------------------------

_TOP_KEYS = frozenset({"meta", "states", "transitions", "description", "metadata"})
_META_KEYS = frozenset(
    {"machine_name", "version", "strict_mode", "validate_context", "description", "metadata"}
)
_STATE_KEYS = frozenset(
    {
        "name",
        "type",
        "initial",
        "parent",
        "children",
        "states",
        "regions",
        "on_enter",
        "on_exit",
        "timeout",
        "description",
        "metadata",
    }
)
_REGION_KEYS = frozenset({"name", "initial", "states", "description", "metadata"})
_TRANSITION_KEYS = frozenset(
    {
        "trigger",
        "source",
        "dest",
        "guards",
        "guard",
        "actions",
        "action",
        "after",
        "internal",
        "description",
        "metadata",
    }
)
_TIMEOUT_KEYS = frozenset({"after", "seconds", "dest", "trigger"})


class _Parser:
    """Walks a raw document once, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []
        self.states: list[StateSpec] = []
        self.regions: list[RegionSpec] = []
        self.strict = True

    def problem(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(path, message))

    # helpers ------------------------------------------------------------------------------

    def mapping(self, value: Any, path: str, what: str) -> Mapping[str, Any] | None:
        if isinstance(value, Mapping):
            return value
        self.problem(path, f"{what} must be a mapping, got {_type(value)}")
        return None

    def unknown_keys(self, raw: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
        if not self.strict:
            return
        for key in raw:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                self.problem(f"{path}.{key}" if path else str(key), f"unknown key (known: {known})")

    def name(self, value: Any, path: str, what: str) -> str | None:
        problem = describe_name_problem(value, what)
        if problem is not None:
            self.problem(path, problem)
            return None
        assert isinstance(value, str)
        return value

    def optional_text(self, raw: Mapping[str, Any], key: str, path: str) -> str | None:
        value = raw.get(key)
        if value is None or isinstance(value, str):
            return value
        self.problem(f"{path}.{key}", f"must be a string, got {_type(value)}")
        return None

    def boolean(self, raw: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = raw.get(key, default)
        if isinstance(value, bool):
            return value
        self.problem(f"{path}.{key}", f"must be true or false, got {value!r}")
        return default

    def delay(self, value: Any, path: str) -> int | None:
        try:
            return parse_delay(value)
        except DelayError as exc:
            self.problem(path, str(exc))
            return None

    # meta -----------------------------------------------------------------------------------

    def meta(self, raw: Any) -> MachineMeta:
        data = self.mapping(raw, "meta", "meta") if raw is not None else None
        if data is None:
            if raw is None:
                self.problem("meta", "missing: a machine needs meta.machine_name")
            return MachineMeta(name="unnamed")
        strict = data.get("strict_mode", True)
        if not isinstance(strict, bool):
            self.problem("meta.strict_mode", f"must be true or false, got {strict!r}")
            strict = True
        self.strict = strict
        self.unknown_keys(data, _META_KEYS, "meta")
        name = self.name(data.get("machine_name"), "meta.machine_name", "machine name")
        version = data.get("version", DEFAULT_VERSION)
        if not isinstance(version, str | int | float) or isinstance(version, bool):
            self.problem("meta.version", f"must be a string, got {_type(version)}")
            version = DEFAULT_VERSION
        return MachineMeta(
            name=name or "unnamed",
            version=str(version),
            strict_mode=strict,
            validate_context=self.validate_context(data.get("validate_context")),
            description=self.optional_text(data, "description", "meta"),
            raw=dict(data),
        )

    def validate_context(self, raw: Any) -> Mapping[str, tuple[str, ...]]:
        path = "meta.validate_context"
        if raw is None or raw is False:
            return {}
        if isinstance(raw, list):
            keys = self.key_list(raw, path)
            return {"*": keys} if keys else {}
        data = self.mapping(raw, path, "validate_context (a list of keys or state: [keys])")
        if data is None:
            return {}
        result: dict[str, tuple[str, ...]] = {}
        for state, keys in data.items():
            if not isinstance(keys, list):
                self.problem(f"{path}.{state}", f"must be a list of keys, got {_type(keys)}")
                continue
            result[str(state)] = self.key_list(keys, f"{path}.{state}")
        return result

    def key_list(self, raw: list[Any], path: str) -> tuple[str, ...]:
        keys = []
        for i, key in enumerate(raw):
            if isinstance(key, str) and key:
                keys.append(key)
            else:
                self.problem(f"{path}[{i}]", f"a context key must be a non-empty string: {key!r}")
        return tuple(keys)

    # states ---------------------------------------------------------------------------------

    def state_list(self, raw: Any, path: str, parent: str | None) -> list[str]:
        if not isinstance(raw, list):
            self.problem(path, f"must be a list of states, got {_type(raw)}")
            return []
        names = []
        for i, item in enumerate(raw):
            name = self.state(item, f"{path}[{i}]", parent)
            if name is not None:
                names.append(name)
        return names

    def state(self, raw: Any, path: str, parent: str | None) -> str | None:
        data = self.mapping(raw, path, "a state")
        if data is None:
            return None
        self.unknown_keys(data, _STATE_KEYS, path)
        name = self.name(data.get("name"), f"{path}.name", "state name")
        kind = self.kind(data.get("type", "stable"), f"{path}.type")
        declared_parent = data.get("parent")
        if declared_parent is not None:
            if parent is not None:
                self.problem(f"{path}.parent", "a nested state cannot also declare a parent")
            else:
                parent = self.name(declared_parent, f"{path}.parent", "parent state name")
        machine_initial, initial_child = self.initial(data.get("initial"), f"{path}.initial")
        if kind is StateKind.INITIAL and parent is None:
            machine_initial = True
        children_raw = data.get("children", data.get("states"))
        if "children" in data and "states" in data:
            self.problem(path, "use either 'children' or 'states' for nested states, not both")
        children = (
            []
            if children_raw is None
            else self.state_list(children_raw, _child_path(path, data), name)
        )
        regions = self.region_list(data.get("regions"), f"{path}.regions", name, kind)
        if name is None:
            return None
        if initial_child is None:
            initial_child = self.initial_from_children(children)
        self.states.append(
            StateSpec(
                name=name,
                kind=kind,
                path=path,
                parent=parent,
                machine_initial=machine_initial,
                initial_child=initial_child,
                on_enter=self.actions(data.get("on_enter"), f"{path}.on_enter"),
                on_exit=self.actions(data.get("on_exit"), f"{path}.on_exit"),
                timeout=self.timeout(data.get("timeout"), f"{path}.timeout"),
                regions=regions,
                description=self.optional_text(data, "description", path),
            )
        )
        return name

    def initial_from_children(self, children: list[str]) -> str | None:
        by_name = {s.name: s for s in self.states}
        marked = [c for c in children if c in by_name and by_name[c].kind is StateKind.INITIAL]
        return marked[0] if len(marked) == 1 else None

    def kind(self, raw: Any, path: str) -> StateKind:
        try:
            return StateKind(raw)
        except ValueError:
            kinds = ", ".join(k.value for k in StateKind)
            self.problem(path, f"unknown state type {raw!r} (expected one of: {kinds})")
            return StateKind.STABLE

    def initial(self, raw: Any, path: str) -> tuple[bool, str | None]:
        if raw is None:
            return False, None
        if isinstance(raw, bool):
            return raw, None
        if isinstance(raw, str):
            return False, self.name(raw, path, "initial child state name")
        self.problem(
            path, f"must be true/false (machine initial) or a child state name, got {_type(raw)}"
        )
        return False, None

    def region_list(
        self, raw: Any, path: str, owner: str | None, kind: StateKind
    ) -> tuple[RegionSpec, ...]:
        if raw is None:
            return ()
        if kind is not StateKind.PARALLEL:
            self.problem(path, "only a state of type 'parallel' can have regions")
        if not isinstance(raw, list):
            self.problem(path, f"must be a list of regions, got {_type(raw)}")
            return ()
        regions = []
        for i, item in enumerate(raw):
            region = self.region(item, f"{path}[{i}]")
            if region is not None:
                regions.append(region)
        return tuple(regions)

    def region(self, raw: Any, path: str) -> RegionSpec | None:
        data = self.mapping(raw, path, "a region")
        if data is None:
            return None
        self.unknown_keys(data, _REGION_KEYS, path)
        name = self.name(data.get("name"), f"{path}.name", "region name")
        states = self.state_list(data.get("states", []), f"{path}.states", name)
        initial = data.get("initial")
        if initial is not None:
            initial = self.name(initial, f"{path}.initial", "region initial state name")
        else:
            initial = self.initial_from_children(states)
        if name is None:
            return None
        region = RegionSpec(name=name, initial=initial, states=tuple(states), path=path)
        self.regions.append(region)
        return region

    # actions, guards, timeouts --------------------------------------------------------------

    def actions(self, raw: Any, path: str) -> tuple[ActionSpec, ...]:
        if raw is None:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        specs = []
        for i, item in enumerate(items):
            item_path = f"{path}[{i}]" if isinstance(raw, list) else path
            spec = self.action(item, item_path)
            if spec is not None:
                specs.append(spec)
        return tuple(specs)

    def action(self, raw: Any, path: str) -> ActionSpec | None:
        if isinstance(raw, str):
            name = self.name(raw, path, "action name")
            return ActionSpec(name=name) if name else None
        data = self.mapping(raw, path, "an action (a name or {name, params})")
        if data is None:
            return None
        self.unknown_keys(data, frozenset({"name", "params"}), path)
        name = self.name(data.get("name"), f"{path}.name", "action name")
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            self.problem(f"{path}.params", f"must be a mapping, got {_type(params)}")
            params = {}
        return ActionSpec(name=name, params=dict(params)) if name else None

    def guards(self, data: Mapping[str, Any], path: str) -> tuple[GuardSpec, ...]:
        if "guard" in data and "guards" in data:
            self.problem(path, "use either 'guard' or 'guards', not both")
        key = "guards" if "guards" in data else "guard"
        raw = data.get(key)
        if raw is None:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        specs = []
        for i, item in enumerate(items):
            spec = self.guard(
                item, f"{path}.{key}[{i}]" if isinstance(raw, list) else f"{path}.{key}"
            )
            if spec is not None:
                specs.append(spec)
        return tuple(specs)

    def guard(self, raw: Any, path: str) -> GuardSpec | None:
        if isinstance(raw, str):
            stripped = raw.strip()
            if stripped.startswith("expr:"):
                return self.expression(stripped[5:], path)
            name = self.name(raw, path, "guard name")
            return GuardSpec(name=name) if name else None
        data = self.mapping(raw, path, "a guard (a name, 'expr: …' or {expr: …})")
        if data is None:
            return None
        self.unknown_keys(data, frozenset({"name", "expr"}), path)
        if ("expr" in data) == ("name" in data):
            self.problem(path, "a guard mapping needs exactly one of 'name' or 'expr'")
            return None
        if "expr" in data:
            return self.expression(data["expr"], f"{path}.expr")
        name = self.name(data.get("name"), f"{path}.name", "guard name")
        return GuardSpec(name=name) if name else None

    def expression(self, source: Any, path: str) -> GuardSpec | None:
        try:
            compiled = compile_expression(source.strip() if isinstance(source, str) else source)
        except ConfigurationError as exc:
            self.problem(path, f"invalid guard expression: {exc.message}")
            return None
        return GuardSpec(expression=compiled)

    def timeout(self, raw: Any, path: str) -> TimeoutSpec | None:
        if raw is None:
            return None
        data = self.mapping(raw, path, "a timeout ({after: '30s', dest: STATE})")
        if data is None:
            return None
        self.unknown_keys(data, _TIMEOUT_KEYS, path)
        if "after" in data:
            delay = self.delay(data["after"], f"{path}.after")
        elif "seconds" in data:
            seconds = data["seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                self.problem(f"{path}.seconds", f"must be a non-negative number, got {seconds!r}")
                delay = None
            else:
                delay = round(seconds * 1000)
        else:
            self.problem(path, "a timeout needs 'after' (e.g. '30s') or 'seconds'")
            delay = None
        dest = self.name(data.get("dest"), f"{path}.dest", "timeout destination state")
        trigger = self.name(
            data.get("trigger", DEFAULT_TIMEOUT_TRIGGER), f"{path}.trigger", "trigger"
        )
        if delay is None or dest is None or trigger is None:
            return None
        return TimeoutSpec(delay_ms=delay, dest=dest, trigger=trigger, path=path)

    # transitions ----------------------------------------------------------------------------

    def transitions(self, raw: Any) -> tuple[TransitionSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.problem("transitions", f"must be a list of transitions, got {_type(raw)}")
            return ()
        specs = []
        for i, item in enumerate(raw):
            spec = self.transition(item, f"transitions[{i}]", i)
            if spec is not None:
                specs.append(spec)
        return tuple(specs)

    def transition(self, raw: Any, path: str, index: int) -> TransitionSpec | None:
        data = self.mapping(raw, path, "a transition")
        if data is None:
            return None
        self.unknown_keys(data, _TRANSITION_KEYS, path)
        trigger = self.name(data.get("trigger"), f"{path}.trigger", "trigger")
        sources = self.sources(data.get("source"), f"{path}.source")
        dest = self.name(data.get("dest"), f"{path}.dest", "destination state")
        guards = self.guards(data, path)
        actions = self.actions(data.get("actions", data.get("action")), f"{path}.actions")
        after = None if data.get("after") is None else self.delay(data["after"], f"{path}.after")
        internal = self.boolean(data, "internal", path, False)
        if trigger is None or not sources or dest is None:
            return None
        return TransitionSpec(
            trigger=trigger,
            sources=sources,
            dest=dest,
            path=path,
            index=index,
            guards=guards,
            actions=actions,
            after_ms=after,
            internal=internal,
            description=self.optional_text(data, "description", path),
        )

    def sources(self, raw: Any, path: str) -> tuple[str, ...]:
        if raw is None:
            self.problem(path, "missing: a transition needs a source state (or a list of them)")
            return ()
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            self.problem(path, "must name at least one state")
        names = []
        for i, item in enumerate(items):
            name = self.name(
                item, f"{path}[{i}]" if isinstance(raw, list) else path, "source state"
            )
            if name is not None:
                names.append(name)
        return tuple(names)


def _child_path(path: str, data: Mapping[str, Any]) -> str:
    return f"{path}.{'children' if 'children' in data else 'states'}"


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_definition(raw: Any) -> tuple[MachineDefinition | None, list[ConfigProblem]]:
    """Parse a raw document; return the definition (None if unusable) and every shape problem."""
    parser = _Parser()
    if not isinstance(raw, Mapping):
        parser.problem("", f"a machine definition must be a mapping, got {_type(raw)}")
        return None, parser.problems
    meta = parser.meta(raw.get("meta"))
    parser.unknown_keys(raw, _TOP_KEYS, "")
    if "states" not in raw:
        parser.problem("states", "missing: a machine needs at least one state")
    else:
        if isinstance(raw["states"], list) and not raw["states"]:
            parser.problem("states", "must list at least one state")
        parser.state_list(raw["states"], "states", None)
    transitions = parser.transitions(raw.get("transitions"))
    definition = MachineDefinition(
        meta=meta,
        states=tuple(sorted(parser.states, key=lambda s: _document_order(s.path))),
        transitions=transitions,
        regions=tuple(parser.regions),
    )
    return definition, parser.problems


def _document_order(path: str) -> tuple[int, ...]:
    """Sort key that puts states in document order (parents before their children)."""
    return tuple(int(part) for part in _indices(path))


def _indices(path: str) -> list[str]:
    out: list[str] = []
    number = ""
    inside = False
    for ch in path:
        if ch == "[":
            inside, number = True, ""
        elif ch == "]":
            inside = False
            out.append(number)
        elif inside:
            number += ch
    return out
