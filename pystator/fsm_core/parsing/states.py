"""The ``states`` list: flat entries with ``parent:``, pystator's nested ``children:``, regions.

Regions come in two forms that may be mixed: the documented one lists state *names*
(``states: [scanning, analyzing]``, the states declared elsewhere, optionally with
``parent: <parallel state>``), pystator's own nests state mappings. Names are resolved once every
state is known (:meth:`StateParser.resolve`): a listed state's parent becomes its region.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pystator.fsm_core.definition import (
    DEFAULT_TIMEOUT_TRIGGER,
    RegionSpec,
    StateKind,
    StateSpec,
    TimeoutSpec,
)
from pystator.fsm_core.parsing.actions import ActionParser
from pystator.fsm_core.parsing.conditions import ConditionParser
from pystator.fsm_core.parsing.reader import Reader, join, type_name

STATE_KEYS = frozenset(
    {
        "name",
        "type",
        "description",
        "group",
        "parent",
        "initial_child",
        "regions",
        "on_enter",
        "on_exit",
        "timeout",
        "invoke",
        "when",
        "metadata",
        # pystator's own forms
        "initial",
        "children",
        "states",
    }
)
REGION_KEYS = frozenset({"name", "initial", "states", "description", "metadata"})
TIMEOUT_KEYS = frozenset({"seconds", "destination", "after", "dest", "trigger"})


@dataclasses.dataclass(slots=True)
class _Listing:
    """A state named in a region's ``states`` list, resolved after all states are read."""

    region: str
    owner: str | None
    name: str
    path: str


class StateParser:
    """Reads every state of a document into flat :class:`StateSpec` entries."""

    def __init__(self, reader: Reader, conditions: ConditionParser, actions: ActionParser) -> None:
        self.r = reader
        self.conditions = conditions
        self.actions = actions
        self.states: list[StateSpec] = []
        self.regions: list[RegionSpec] = []
        self._listings: list[_Listing] = []
        self._kind_of: dict[str, StateKind] = {}  # the last state read under each name

    def state_list(self, raw: Any, path: str, parent: str | None) -> list[str]:
        """Parse a list of state mappings; return the names read."""
        if not isinstance(raw, list):
            self.r.problem(path, f"must be a list of states, got {type_name(raw)}")
            return []
        names = []
        for i, item in enumerate(raw):
            name = self.state(item, f"{path}[{i}]", parent)
            if name is not None:
                names.append(name)
        return names

    def state(self, raw: Any, path: str, parent: str | None) -> str | None:
        """Parse one state mapping (and its nested states); return its name."""
        data = self.r.mapping(raw, path, "a state")
        if data is None:
            return None
        self.r.unknown_keys(data, STATE_KEYS, path)
        name = self.r.name(data.get("name"), join(path, "name"), "state name")
        kind = self._kind(data.get("type", "stable"), join(path, "type"))
        parent = self._parent(data, path, parent)
        machine_initial, initial_child = self._initial(data, path)
        if kind is StateKind.INITIAL and parent is None:
            machine_initial = True
        children = self._children(data, path, name)
        regions = self._regions(data.get("regions"), join(path, "regions"), name, kind)
        if name is None:
            return None
        if initial_child is None:
            initial_child = self._marked(children)
        self.states.append(
            StateSpec(
                name=name,
                kind=kind,
                path=path,
                parent=parent,
                machine_initial=machine_initial,
                initial_child=initial_child,
                on_enter=self.actions.actions(data.get("on_enter"), join(path, "on_enter")),
                on_exit=self.actions.actions(data.get("on_exit"), join(path, "on_exit")),
                timeout=self._timeout(data.get("timeout"), join(path, "timeout")),
                regions=regions,
                description=self.r.optional_text(data, "description", path),
                group=self._group(data.get("group"), join(path, "group")),
                when=self.conditions.check_list(data.get("when"), join(path, "when")),
                invoke=self._invoke(data.get("invoke"), join(path, "invoke")),
                metadata=self._metadata(data.get("metadata"), join(path, "metadata")),
            )
        )
        self._kind_of[name] = kind
        return name

    # pieces of a state ----------------------------------------------------------------------

    def _kind(self, raw: Any, path: str) -> StateKind:
        try:
            return StateKind(raw)
        except ValueError:
            kinds = ", ".join(k.value for k in StateKind)
            self.r.problem(path, f"unknown state type {raw!r} (expected one of: {kinds})")
            return StateKind.STABLE

    def _parent(self, data: Mapping[str, Any], path: str, nested_in: str | None) -> str | None:
        declared = data.get("parent")
        if declared is None:
            return nested_in
        if nested_in is not None:
            self.r.problem(join(path, "parent"), "a nested state cannot also declare a parent")
            return nested_in
        return self.r.name(declared, join(path, "parent"), "parent state name")

    def _initial(self, data: Mapping[str, Any], path: str) -> tuple[bool, str | None]:
        child = data.get("initial_child")
        if child is not None:
            child = self.r.name(child, join(path, "initial_child"), "initial child state name")
        raw = data.get("initial")
        if raw is None:
            return False, child
        if isinstance(raw, bool):
            return raw, child
        if isinstance(raw, str):
            if "initial_child" in data:
                self.r.problem(
                    join(path, "initial"), "use 'initial_child' alone, not with 'initial'"
                )
                return False, child
            self.r.deprecated(
                join(path, "initial"),
                f"'initial: {raw}' on a state is deprecated: write 'initial_child: {raw}'",
            )
            return False, self.r.name(raw, join(path, "initial"), "initial child state name")
        self.r.problem(
            join(path, "initial"),
            f"must be true/false (machine initial) or a child state name, got {type_name(raw)}",
        )
        return False, child

    def _children(self, data: Mapping[str, Any], path: str, name: str | None) -> list[str]:
        if "children" in data and "states" in data:
            self.r.problem(path, "use either 'children' or 'states' for nested states, not both")
        key = "children" if "children" in data else "states"
        if data.get(key) is None:
            return []
        return self.state_list(data[key], join(path, key), name)

    def _marked(self, names: list[str]) -> str | None:
        marked = [n for n in names if self._kind_of.get(n) is StateKind.INITIAL]
        return marked[0] if len(marked) == 1 else None

    def _group(self, raw: Any, path: str) -> str | None:
        return None if raw is None else self.r.name(raw, path, "group name")

    def _invoke(self, raw: Any, path: str) -> tuple[Any, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(isinstance(i, str | Mapping) for i in raw):
            self.r.problem(path, "must be a list of service references (names or mappings)")
            return ()
        return tuple(raw)

    def _metadata(self, raw: Any, path: str) -> Mapping[str, Any]:
        if raw is None:
            return {}
        data = self.r.mapping(raw, path, "metadata")
        return dict(data) if data is not None else {}

    def _timeout(self, raw: Any, path: str) -> TimeoutSpec | None:
        if raw is None:
            return None
        data = self.r.mapping(raw, path, "a timeout ({seconds: 30, destination: STATE})")
        if data is None:
            return None
        self.r.unknown_keys(data, TIMEOUT_KEYS, path)
        delay = self._timeout_delay(data, path)
        dest = self._timeout_dest(data, path)
        trigger = self.r.name(
            data.get("trigger", DEFAULT_TIMEOUT_TRIGGER), join(path, "trigger"), "trigger"
        )
        if delay is None or dest is None or trigger is None:
            return None
        return TimeoutSpec(delay_ms=delay, dest=dest, trigger=trigger, path=path)

    def _timeout_delay(self, data: Mapping[str, Any], path: str) -> int | None:
        if "after" in data and "seconds" in data:
            self.r.problem(path, "use either 'seconds' or 'after', not both")
            return None
        if "after" in data:
            return self.r.delay(data["after"], join(path, "after"))
        if "seconds" in data:
            seconds = self.r.seconds(data, "seconds", path)
            return None if seconds is None else self.r.delay(seconds * 1000, join(path, "seconds"))
        self.r.problem(path, "a timeout needs 'seconds' (or pystator's 'after', e.g. '30s')")
        return None

    def _timeout_dest(self, data: Mapping[str, Any], path: str) -> str | None:
        if "dest" in data and "destination" in data:
            self.r.problem(path, "use 'destination' alone, not with 'dest'")
            return None
        if "dest" in data:
            self.r.deprecated(
                join(path, "dest"), "'timeout.dest' is deprecated: write 'timeout.destination'"
            )
            return self.r.name(data["dest"], join(path, "dest"), "timeout destination state")
        return self.r.name(
            data.get("destination"), join(path, "destination"), "timeout destination state"
        )

    # regions --------------------------------------------------------------------------------

    def _regions(
        self, raw: Any, path: str, owner: str | None, kind: StateKind
    ) -> tuple[RegionSpec, ...]:
        if raw is None:
            return ()
        if kind is not StateKind.PARALLEL:
            self.r.problem(path, "only a state of type 'parallel' can have regions")
        if not isinstance(raw, list):
            self.r.problem(path, f"must be a list of regions, got {type_name(raw)}")
            return ()
        regions = []
        for i, item in enumerate(raw):
            region = self._region(item, f"{path}[{i}]", owner)
            if region is not None:
                regions.append(region)
        return tuple(regions)

    def _region(self, raw: Any, path: str, owner: str | None) -> RegionSpec | None:
        data = self.r.mapping(raw, path, "a region")
        if data is None:
            return None
        self.r.unknown_keys(data, REGION_KEYS, path)
        name = self.r.name(data.get("name"), join(path, "name"), "region name")
        members = self._members(data.get("states", []), join(path, "states"), name, owner)
        initial = data.get("initial")
        if initial is not None:
            initial = self.r.name(initial, join(path, "initial"), "region initial state name")
        if name is None:
            return None
        region = RegionSpec(
            name=name,
            initial=initial,
            states=tuple(members),
            path=path,
            description=self.r.optional_text(data, "description", path),
        )
        self.regions.append(region)
        return region

    def _members(self, raw: Any, path: str, region: str | None, owner: str | None) -> list[str]:
        """A region's states: names (documented form) and nested mappings (pystator's form)."""
        if not isinstance(raw, list):
            self.r.problem(path, f"must be a list of states, got {type_name(raw)}")
            return []
        names = []
        for i, item in enumerate(raw):
            where = f"{path}[{i}]"
            if isinstance(item, str):
                name = self.r.name(item, where, "state name")
                if name is not None and region is not None:
                    self._listings.append(_Listing(region, owner, name, where))
            else:
                name = self.state(item, where, region)
            if name is not None:
                names.append(name)
        return names

    # resolution -----------------------------------------------------------------------------

    def resolve(self) -> None:
        """Attach listed states to their regions and fill in regions' derived initial states."""
        index = {s.name: i for i, s in reversed(list(enumerate(self.states)))}
        listed: dict[str, str] = {}
        for item in self._listings:
            position = index.get(item.name)
            if position is None:
                self.r.problem(item.path, f"unknown state {item.name!r} in region {item.region!r}")
                continue
            if item.name in listed and listed[item.name] != item.region:
                self.r.problem(
                    item.path,
                    f"state {item.name!r} is already listed in region {listed[item.name]!r}",
                )
                continue
            listed[item.name] = item.region
            state = self.states[position]
            if state.parent not in (None, item.owner, item.region):
                self.r.problem(
                    item.path,
                    f"state {item.name!r} is listed in region {item.region!r} but declares "
                    f"parent {state.parent!r}",
                )
                continue
            self.states[position] = dataclasses.replace(state, parent=item.region)
        self._derive_region_initials()

    def _derive_region_initials(self) -> None:
        kinds = {s.name: s.kind for s in self.states}
        derived: dict[str, RegionSpec] = {}
        for region in self.regions:
            if region.initial is None:
                marked = [n for n in region.states if kinds.get(n) is StateKind.INITIAL]
                if len(marked) == 1:
                    derived[region.name] = dataclasses.replace(region, initial=marked[0])
        if not derived:
            return
        self.regions = [derived.get(r.name, r) for r in self.regions]
        for i, state in enumerate(self.states):
            if any(r.name in derived for r in state.regions):
                regions = tuple(derived.get(r.name, r) for r in state.regions)
                self.states[i] = dataclasses.replace(state, regions=regions)
