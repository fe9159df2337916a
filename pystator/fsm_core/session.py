"""``EntitySession``: one entity's current state and context, in memory.

``send(trigger, **payload)`` merges the payload over the context, asks the machine, and on
success moves to the target state and keeps the merged context with the transition's declarative
effects applied (a rejected event changes nothing). ``is_<state>`` properties and ``<trigger>()`` methods are generated from the machine.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.errors import ConfigurationError, InvalidStateError
from pystator.fsm_core.results import TransitionResult

if TYPE_CHECKING:
    from pystator.fsm_core.machine import StateMachine

SNAPSHOT_FORMAT = 1


class EntitySession:
    """The in-process object for one entity: ``machine.create(context=…)``."""

    __slots__ = ("_context", "_machine", "_state")

    def __init__(
        self,
        machine: StateMachine,
        *,
        context: Mapping[str, Any] | None = None,
        state: str | None = None,
    ) -> None:
        if context is not None and not isinstance(context, Mapping):
            raise ConfigurationError(f"context must be a mapping, got {type(context).__name__}")
        start = machine.get_initial_state() if state is None else state
        if not machine.has_state(start):
            raise InvalidStateError(
                f"machine {machine.name!r} has no state {start!r}", state=str(start)
            )
        self._machine = machine
        self._state: str = start
        self._context: dict[str, Any] = dict(context or {})

    # state ----------------------------------------------------------------------------------

    @property
    def machine(self) -> StateMachine:
        """The machine this session runs."""
        return self._machine

    @property
    def current_state(self) -> str:
        """The current state (an encoded configuration inside a parallel state)."""
        return self._state

    @property
    def context(self) -> dict[str, Any]:
        """The entity's context; event payloads are merged into it."""
        return self._context

    @property
    def allowed_triggers(self) -> list[str]:
        """Triggers some transition accepts from the current state (guards not evaluated)."""
        return self._machine.allowed_triggers(self._state)

    @property
    def is_final(self) -> bool:
        """True once the entity is in a terminal state."""
        return self._machine.is_terminal(self._state)

    def is_in(self, state: str) -> bool:
        """True when ``state`` is active (the current leaf, one of its ancestors, or a region's)."""
        return state in self._machine.active_states(self._state)

    # events ---------------------------------------------------------------------------------

    def send(self, trigger: str, **payload: Any) -> TransitionResult:
        """Apply ``trigger``; the payload is merged into the context guards see."""
        context = {**self._context, **payload} if payload else self._context
        result = self._machine.process(self._state, trigger, context)
        self._apply(result, context)
        return result

    async def asend(self, trigger: str, **payload: Any) -> TransitionResult:
        """Like :meth:`send`, awaiting async guards."""
        context = {**self._context, **payload} if payload else self._context
        result = await self._machine.aprocess(self._state, trigger, context)
        self._apply(result, context)
        return result

    def _apply(self, result: TransitionResult, context: dict[str, Any]) -> None:
        if result.success and result.target_state is not None:
            self._state = result.target_state
            if result.context is not None:  # the transition's declarative effects
                self._context = dict(result.context)
            elif context is not self._context:
                self._context = context

    # persistence ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly dict to store and later :meth:`from_snapshot`."""
        return {
            "format": SNAPSHOT_FORMAT,
            "machine": self._machine.name,
            "machine_version": self._machine.version,
            "state": self._state,
            "context": dict(self._context),
        }

    @classmethod
    def from_snapshot(cls, machine: StateMachine, snapshot: Mapping[str, Any]) -> EntitySession:
        """Restore a session saved with :meth:`snapshot` (the machine name must match)."""
        if not isinstance(snapshot, Mapping) or "state" not in snapshot:
            raise ConfigurationError("a snapshot must be a mapping with at least a 'state' key")
        name = snapshot.get("machine", machine.name)
        if name != machine.name:
            raise ConfigurationError(f"snapshot belongs to machine {name!r}, not {machine.name!r}")
        context = snapshot.get("context") or {}
        return cls(machine, context=context, state=snapshot["state"])

    # generated names ------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        machine = self._machine
        if name.startswith("is_"):
            state = _state_named(machine, name[3:])
            if state is not None:
                return self.is_in(state)
        if machine.has_trigger(name):
            return functools.partial(self.send, name)
        raise AttributeError(
            f"{type(self).__name__} of machine {machine.name!r} has no attribute {name!r} "
            "(is_<state> and <trigger>() are generated from the machine's states and triggers)"
        )

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        names.update(f"is_{s.lower()}" for s in self._machine.states)
        names.update(t for t in self._machine.triggers if t.isidentifier())
        return sorted(names)

    def __repr__(self) -> str:
        return f"EntitySession(machine={self._machine.name!r}, state={self._state!r})"


def _state_named(machine: StateMachine, suffix: str) -> str | None:
    """The state ``is_<suffix>`` refers to: an exact name, else a case-insensitive match."""
    states = machine.states
    if suffix in states:
        return suffix
    matches = [s for s in states if s.lower() == suffix.lower()]
    return matches[0] if len(matches) == 1 else None
