"""The ``transitions`` list: triggers, sources (``"*"`` too), delays, regions, guards, actions.

Two kinds of transition have no declared trigger; the engine names them so that timers and
lookups stay uniform: a trigger-less ``after:`` fires ``_after_<index>``, and a choice state's
branches (taken at once, never sent) use ``_choice_<index>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pystator.fsm_core.definition import StateKind, StateSpec, TransitionSpec
from pystator.fsm_core.limits import MAX_TRANSITIONS
from pystator.fsm_core.parsing.actions import ActionParser
from pystator.fsm_core.parsing.conditions import ConditionParser
from pystator.fsm_core.parsing.reader import Reader, join, type_name

ANY_SOURCE = "*"
AFTER_TRIGGER_PREFIX = "_after_"
CHOICE_TRIGGER_PREFIX = "_choice_"

TRANSITION_KEYS = frozenset(
    {
        "trigger",
        "source",
        "dest",
        "guards",
        "actions",
        "after",
        "region",
        "description",
        "ref",
        "refs",
        "metadata",
        # pystator's own forms
        "guard",
        "action",
        "internal",
    }
)


class TransitionParser:
    """Reads the transitions of a document whose states are already known."""

    def __init__(
        self,
        reader: Reader,
        conditions: ConditionParser,
        actions: ActionParser,
        states: list[StateSpec],
    ) -> None:
        self.r = reader
        self.conditions = conditions
        self.actions = actions
        self.states = {s.name: s for s in reversed(states)}
        self.order = [s.name for s in states]

    def transitions(self, raw: Any) -> tuple[TransitionSpec, ...]:
        """Every transition of the document, in order."""
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.r.problem("transitions", f"must be a list of transitions, got {type_name(raw)}")
            return ()
        if len(raw) > MAX_TRANSITIONS:
            self.r.problem(
                "transitions",
                f"{len(raw):,} transitions; a machine may have at most {MAX_TRANSITIONS:,}",
            )
            return ()
        specs = []
        for i, item in enumerate(raw):
            spec = self.transition(item, f"transitions[{i}]", i)
            if spec is not None:
                specs.append(spec)
        return tuple(specs)

    def transition(self, raw: Any, path: str, index: int) -> TransitionSpec | None:
        """One transition."""
        data = self.r.mapping(raw, path, "a transition")
        if data is None:
            return None
        self.r.unknown_keys(data, TRANSITION_KEYS, path)
        region = None
        if data.get("region") is not None:
            region = self.r.name(data["region"], join(path, "region"), "region name")
        any_source = data.get("source") == ANY_SOURCE
        sources = self._sources(data.get("source"), join(path, "source"), region)
        after = (
            None if data.get("after") is None else self.r.delay(data["after"], join(path, "after"))
        )
        trigger, declared = self._trigger(data, path, index, sources)
        dest = self.r.name(data.get("dest"), join(path, "dest"), "destination state")
        guards = self.conditions.guards(data, path)
        actions = self._actions(data, path)
        internal = self.r.boolean(data, "internal", path, False)
        refs = self._refs(data, path)
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            self.r.problem(join(path, "metadata"), f"must be a mapping, got {type_name(metadata)}")
            metadata = {}
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
            description=self.r.optional_text(data, "description", path),
            region=region,
            any_source=any_source,
            declared_trigger=declared,
            refs=refs,
            metadata=dict(metadata),
        )

    def _trigger(
        self, data: Mapping[str, Any], path: str, index: int, sources: tuple[str, ...]
    ) -> tuple[str | None, bool]:
        choice = [
            s for s in sources if s in self.states and self.states[s].kind is StateKind.CHOICE
        ]
        if choice:
            if len(choice) != len(sources):
                self.r.problem(
                    join(path, "source"),
                    "a choice state's branches cannot share a rule with other sources",
                )
            for key in ("trigger", "after"):
                if data.get(key) is not None:
                    self.r.problem(
                        join(path, key),
                        f"transitions out of choice state {choice[0]!r} are taken at once: "
                        f"remove {key!r}",
                    )
            return f"{CHOICE_TRIGGER_PREFIX}{index}", False
        if data.get("trigger") is None and data.get("after") is not None:
            return f"{AFTER_TRIGGER_PREFIX}{index}", False
        if data.get("trigger") is None:
            self.r.problem(
                join(path, "trigger"), "missing: a transition needs a trigger (or after:)"
            )
            return None, True
        return self.r.name(data["trigger"], join(path, "trigger"), "trigger"), True

    def _actions(self, data: Mapping[str, Any], path: str) -> tuple[Any, ...]:
        if "action" in data and "actions" in data:
            self.r.problem(path, "use either 'action' or 'actions', not both")
        key = "actions" if "actions" in data else "action"
        return self.actions.actions(data.get(key), join(path, "actions"))

    def _sources(self, raw: Any, path: str, region: str | None) -> tuple[str, ...]:
        if raw is None:
            self.r.problem(path, "missing: a transition needs a source state (or a list of them)")
            return ()
        if raw == ANY_SOURCE:
            return self._every_source(path, region)
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            self.r.problem(path, "must name at least one state")
        names = []
        for i, item in enumerate(items):
            where = f"{path}[{i}]" if isinstance(raw, list) else path
            if item == ANY_SOURCE:
                self.r.problem(where, "'*' stands alone: write source: '*'")
                continue
            name = self.r.name(item, where, "source state")
            if name is not None:
                names.append(name)
        return tuple(names)

    def _every_source(self, path: str, region: str | None) -> tuple[str, ...]:
        """``"*"``: the top-level states of the machine (or of ``region``), terminal and choice
        states excluded. A transition on a parent state applies in all of its children."""
        found = []
        for name in self.order:
            state = self.states[name]
            if state.parent == region and state.kind not in (StateKind.TERMINAL, StateKind.CHOICE):
                found.append(name)
        if not found:
            where = f"region {region!r}" if region else "the machine"
            self.r.problem(path, f"'*' matches no state: {where} has no non-terminal state")
        return tuple(dict.fromkeys(found))

    def _refs(self, data: Mapping[str, Any], path: str) -> tuple[str, ...]:
        refs: list[str] = []
        ref = data.get("ref")
        if ref is not None:
            if isinstance(ref, str):
                refs.append(ref)
            else:
                self.r.problem(join(path, "ref"), f"must be a string, got {type_name(ref)}")
        more = data.get("refs")
        if more is not None:
            if isinstance(more, list) and all(isinstance(x, str) for x in more):
                refs.extend(x for x in more if x not in refs)
            else:
                self.r.problem(join(path, "refs"), "must be a list of strings")
        return tuple(refs)
