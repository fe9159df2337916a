"""``StateMachineBuilder``: write a definition in Python, get the same machine as from YAML.

Each method adds one part of the documented schema under the key it has in YAML, and returns the
builder, so calls chain. Nothing is checked until :meth:`StateMachineBuilder.build` (the same
validation as ``from_dict``, every problem at once). :meth:`~StateMachineBuilder.to_dict` gives the
definition document; ``StateMachineBuilder.from_dict(doc).to_dict() == doc`` for any definition
made of the documented sections.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.guards import GuardRegistry
from pystator.fsm_core.machine import StateMachine

_SECTIONS = (
    "meta",
    "groups",
    "error_policy",
    "state_variables",
    "context_invariants",
    "events",
    "states",
    "transitions",
)


def _present(**fields: Any) -> dict[str, Any]:
    """The fields that were given (None means "not written")."""
    return {k: copy.deepcopy(v) for k, v in fields.items() if v is not None}


class StateMachineBuilder:
    """Accumulates a definition document; :meth:`build` turns it into a :class:`StateMachine`."""

    def __init__(self, machine_name: str | None = None, **meta: Any) -> None:
        """Start a definition; ``meta`` fields (``version``, ``strict_mode`` …) as keywords."""
        self._doc: dict[str, Any] = {}
        self.meta(**_present(machine_name=machine_name, **meta))

    # sections -------------------------------------------------------------------------------

    def meta(self, **fields: Any) -> StateMachineBuilder:
        """Set ``meta`` fields (merged with those already set)."""
        if fields:
            self._doc.setdefault("meta", {}).update(copy.deepcopy(fields))
        return self

    def group(self, name: str, description: str | None = None) -> StateMachineBuilder:
        """Declare a group states can name with ``group=``."""
        self._doc.setdefault("groups", {})[name] = _present(description=description)
        return self

    def error_policy(
        self, *, default_fallback: str | None = None, retry_attempts: int | None = None
    ) -> StateMachineBuilder:
        """Set ``error_policy`` (see also ``meta(orchestrator_default_fallback=…)``)."""
        self._doc["error_policy"] = _present(
            default_fallback=default_fallback, retry_attempts=retry_attempts
        )
        return self

    def state_variable(
        self,
        key: str,
        type: str | None = None,
        *,
        required: bool | None = None,
        description: str | None = None,
        **default: Any,
    ) -> StateMachineBuilder:
        """Add a ``state_variables`` entry (``default=…`` as a keyword, if any)."""
        entry = {"key": key, **_present(type=type, description=description, required=required)}
        if "default" in default:
            entry["default"] = copy.deepcopy(default.pop("default"))
        if default:
            raise TypeError(f"unexpected keyword(s): {', '.join(default)}")
        self._doc.setdefault("state_variables", []).append(entry)
        return self

    def invariant(
        self, name: str, check: Mapping[str, Any], description: str | None = None
    ) -> StateMachineBuilder:
        """Add a ``context_invariants`` rule: ``check`` is ``{field, op, value | values}``."""
        entry = {
            "name": name,
            "check": copy.deepcopy(dict(check)),
            **_present(description=description),
        }
        self._doc.setdefault("context_invariants", []).append(entry)
        return self

    def event(
        self, name: str, description: str | None = None, payload: Any = None
    ) -> StateMachineBuilder:
        """Document an event (the ``events`` section; the engine does not use it)."""
        entry = {"name": name, **_present(description=description, payload=payload)}
        self._doc.setdefault("events", []).append(entry)
        return self

    # states ---------------------------------------------------------------------------------

    def state(self, name: str, type: str | None = None, **fields: Any) -> StateMachineBuilder:
        """Add a state. ``fields`` are the state's keys: ``parent``, ``initial_child``,
        ``on_enter``, ``on_exit``, ``timeout``, ``regions``, ``group``, ``when``,
        ``description``, ``metadata``, ``invoke``."""
        self._doc.setdefault("states", []).append({"name": name, **_present(type=type, **fields)})
        return self

    def initial(self, name: str, **fields: Any) -> StateMachineBuilder:
        """Add the machine's initial state."""
        return self.state(name, "initial", **fields)

    def terminal(self, name: str, **fields: Any) -> StateMachineBuilder:
        """Add a terminal state."""
        return self.state(name, "terminal", **fields)

    def parallel(
        self, name: str, regions: Sequence[Mapping[str, Any]], **fields: Any
    ) -> StateMachineBuilder:
        """Add a parallel state; build each region with :meth:`region`."""
        return self.state(name, "parallel", regions=[dict(r) for r in regions], **fields)

    @staticmethod
    def region(
        name: str, initial: str, states: Sequence[str], description: str | None = None
    ) -> dict[str, Any]:
        """One region of a parallel state (its states are named; add them with ``parent=``)."""
        return {
            "name": name,
            "initial": initial,
            "states": list(states),
            **_present(description=description),
        }

    # transitions ----------------------------------------------------------------------------

    def transition(
        self,
        trigger: str | None,
        source: str | Sequence[str],
        dest: str,
        **fields: Any,
    ) -> StateMachineBuilder:
        """Add a transition (``trigger=None`` for a trigger-less ``after=`` or a choice branch).
        ``fields``: ``guards``, ``actions``, ``after``, ``region``, ``description``, ``ref``,
        ``refs``, ``metadata``, ``internal``."""
        source_value: Any = source if isinstance(source, str) else list(source)
        entry = {**_present(trigger=trigger), "source": source_value, "dest": dest}
        entry.update(_present(**fields))
        self._doc.setdefault("transitions", []).append(entry)
        return self

    # results --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The definition document (a deep copy), sections in the documented order."""
        order = [k for k in _SECTIONS if k in self._doc] + [
            k for k in self._doc if k not in _SECTIONS
        ]
        return {key: copy.deepcopy(self._doc[key]) for key in order}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> StateMachineBuilder:
        """A builder holding ``config`` (to extend it in Python)."""
        builder = cls()
        builder._doc = {key: copy.deepcopy(value) for key, value in config.items()}
        return builder

    def build(
        self,
        *,
        guards: GuardRegistry | None = None,
        actions: ActionRegistry | None = None,
    ) -> StateMachine:
        """The machine (validated like ``from_dict``), with ``guards``/``actions`` bound."""
        machine = StateMachine.from_dict(self.to_dict(), source="<builder>")
        if guards is not None:
            machine.bind_guards(guards)
        if actions is not None:
            machine.bind_actions(actions)
        return machine
