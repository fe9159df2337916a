"""``EntitySession``: one entity's current state and context, in memory.

``send(trigger, **payload)`` merges the payload over the context, asks the machine, and on
success moves to the target state and keeps the merged context with the transition's declarative
effects applied (a rejected event changes nothing). ``is_<state>`` properties and ``<trigger>()`` methods are generated from the machine.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.actions import ActionExecutor
from pystator.fsm_core.context import ENTITY_ID_KEY
from pystator.fsm_core.errors import ConfigurationError, InvalidStateError
from pystator.fsm_core.hooks import enter_entity, leave_entity
from pystator.fsm_core.recording import EventRecorder
from pystator.fsm_core.results import DestinationCheckResult, TransitionResult

if TYPE_CHECKING:
    from pystator.fsm_core.machine import StateMachine

SNAPSHOT_FORMAT = 1
LOGGER = logging.getLogger("pystator.session")
HISTORY_LIMIT = 1_000  # results a session keeps in .history (oldest dropped first)


class EntitySession:
    """The in-process object for one entity: ``machine.create(context=…)``."""

    __slots__ = (
        "_context",
        "_defer_unhandled",
        "_deferred",
        "_entity_id",
        "_execute_actions",
        "_history",
        "_lock",
        "_machine",
        "_plain",
        "_state",
    )

    def __init__(
        self,
        machine: StateMachine,
        *,
        context: Mapping[str, Any] | None = None,
        state: str | None = None,
        entity_id: str | None = None,
        execute_actions: bool = False,
        defer_unhandled: bool = False,
    ) -> None:
        """``entity_id`` names the entity (default: the context's ``_entity_id``, if any);
        ``execute_actions=True`` runs planned actions locally after each transition;
        ``defer_unhandled=True`` queues events the current state has no transition for and
        replays them after the next successful transition."""
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
        found = self._context.get(ENTITY_ID_KEY) if entity_id is None else entity_id
        self._entity_id: str | None = None if found is None else str(found)
        self._execute_actions = execute_actions
        self._defer_unhandled = defer_unhandled
        self._plain = not (execute_actions or defer_unhandled)
        self._deferred: list[tuple[str, dict[str, Any]]] = []
        self._history: deque[TransitionResult] = deque(maxlen=HISTORY_LIMIT)
        self._lock = threading.Lock()

    # state ----------------------------------------------------------------------------------

    @property
    def machine(self) -> StateMachine:
        """The machine this session runs."""
        return self._machine

    @property
    def entity_id(self) -> str | None:
        """The entity this session is for (None when it was not named)."""
        return self._entity_id

    @property
    def history(self) -> list[TransitionResult]:
        """The results of :meth:`send`/:meth:`asend` on this session, oldest first (the last
        ``HISTORY_LIMIT``)."""
        return list(self._history)

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
        """Apply ``trigger``; the payload is merged into the context guards see. Thread-safe."""
        machine = self._machine
        if self._plain and not machine.has_listeners:
            # the common case, kept inline: no hooks, callbacks, deferral or local actions
            with self._lock:
                context = {**self._context, **payload} if payload else self._context
                result = machine.process(self._state, trigger, context)
                if result.success and result.target_state is not None:
                    self._state = result.target_state
                    if result.context is not None:
                        self._context = dict(result.context)
                    elif context is not self._context:
                        self._context = context
                self._history.append(result)
                return result
        with self._lock:
            # hooks read the entity from a context variable: only set it when some may listen
            token = None if machine.observer is None else enter_entity(self._entity_id)
            try:
                result = self._send(trigger, payload)
                if self._defer_unhandled and result.success:
                    self._replay_deferred()
                return result
            finally:
                if token is not None:
                    leave_entity(token)

    def _send(self, trigger: str, payload: dict[str, Any]) -> TransitionResult:
        if self._defer_unhandled and not self._handles(trigger):
            self._deferred.append((trigger, dict(payload)))
            return TransitionResult.failure_result(
                self._state,
                trigger,
                f"no transition for {trigger!r} in {self._state!r}: deferred",
                metadata={"reason": "deferred", "deferred": True},
            )
        context = {**self._context, **payload} if payload else self._context
        result = self._machine.process(self._state, trigger, context)
        result = self._apply(result, context)
        if self._execute_actions and result.success and result.actions:
            result = self._run_actions(result)
        return result

    def _handles(self, trigger: str) -> bool:
        return trigger in self._machine.allowed_triggers(self._state)

    def _replay_deferred(self) -> None:
        """Replay queued events while some of them can now be handled."""
        progressed = True
        while progressed and self._deferred:
            progressed = False
            for index, (trigger, payload) in enumerate(self._deferred):
                if self._handles(trigger):
                    del self._deferred[index]
                    if self._send(trigger, payload).success:
                        progressed = True
                    break

    @property
    def deferred_events(self) -> list[tuple[str, dict[str, Any]]]:
        """The queued ``(trigger, payload)`` events (``defer_unhandled=True``), oldest first."""
        return [(t, dict(p)) for t, p in self._deferred]

    def clear_deferred(self) -> None:
        """Discard every queued event."""
        self._deferred.clear()

    def record(self) -> EventRecorder:
        """An :class:`EventRecorder` sending through this session and recording each event."""
        return EventRecorder(self)

    def evaluate_destination(
        self, destination: str, context_overrides: Mapping[str, Any] | None = None
    ) -> DestinationCheckResult:
        """Can some trigger move the session to ``destination`` now? Guards see the context
        with ``context_overrides`` merged in (for the check only: nothing changes)."""
        context = {**self._context, **(context_overrides or {})}
        return self._machine.evaluate_destination(self._state, destination, context)

    def can_transition_to(
        self, destination: str, context_overrides: Mapping[str, Any] | None = None
    ) -> bool:
        """``evaluate_destination(…).allowed``."""
        return self.evaluate_destination(destination, context_overrides).allowed

    async def asend(self, trigger: str, **payload: Any) -> TransitionResult:
        """Like :meth:`send`, awaiting async guards (and async actions when executing them)."""
        token = None if self._machine.observer is None else enter_entity(self._entity_id)
        try:
            context = {**self._context, **payload} if payload else self._context
            result = await self._machine.aprocess(self._state, trigger, context)
            result = self._apply(result, context)
            if self._execute_actions and result.success and result.actions:
                executor = ActionExecutor(self._machine.action_registry, raise_on_error=False)
                report = await executor.async_execute(result, self._action_context())
                result = _with_action_results(result, report)
            return result
        finally:
            if token is not None:
                leave_entity(token)

    def _apply(self, result: TransitionResult, context: dict[str, Any]) -> TransitionResult:
        if result.success and result.target_state is not None:
            self._state = result.target_state
            if result.context is not None:  # the transition's declarative effects
                self._context = dict(result.context)
            elif context is not self._context:
                self._context = context
            for kind, state, fn in self._machine.lifecycle_callbacks(result):
                try:
                    fn(self._context)
                except Exception:  # a callback is an observer: it never undoes the transition
                    LOGGER.error("on_%s callback of state %r raised", kind, state, exc_info=True)
        self._history.append(result)
        return result

    def _action_context(self) -> dict[str, Any]:
        context = dict(self._context)
        if self._entity_id is not None:
            context[ENTITY_ID_KEY] = self._entity_id
        return context

    def _run_actions(self, result: TransitionResult) -> TransitionResult:
        executor = ActionExecutor(self._machine.action_registry, raise_on_error=False)
        return _with_action_results(result, executor.execute(result, self._action_context()))

    # persistence ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly dict to store and later :meth:`from_snapshot`."""
        snap: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            "machine": self._machine.name,
            "machine_name": self._machine.name,
            "machine_version": self._machine.version,
            "state": self._state,
            "current_state": self._state,
            "context": dict(self._context),
        }
        if self._entity_id is not None:
            snap["entity_id"] = self._entity_id
        return snap

    @classmethod
    def from_snapshot(cls, machine: StateMachine, snapshot: Mapping[str, Any]) -> EntitySession:
        """Restore a session saved with :meth:`snapshot` (the machine name must match)."""
        if not isinstance(snapshot, Mapping) or not (
            "state" in snapshot or "current_state" in snapshot
        ):
            raise ConfigurationError(
                "a snapshot must be a mapping with at least a 'state' (or 'current_state') key"
            )
        name = snapshot.get("machine", snapshot.get("machine_name", machine.name))
        if name != machine.name:
            raise ConfigurationError(f"snapshot belongs to machine {name!r}, not {machine.name!r}")
        context = snapshot.get("context") or {}
        state = snapshot["state"] if "state" in snapshot else snapshot["current_state"]
        return cls(machine, context=context, state=state, entity_id=snapshot.get("entity_id"))

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


def _with_action_results(result: TransitionResult, report: Any) -> TransitionResult:
    """``result`` with the local execution's outcomes in ``metadata["action_results"]``."""
    rows = [
        {
            "name": o.name,
            "status": o.status,
            "attempts": o.attempts,
            "error": None if o.error is None else str(o.error),
        }
        for o in report.outcomes
    ]
    return dataclasses.replace(result, metadata={**result.metadata, "action_results": rows})


def _state_named(machine: StateMachine, suffix: str) -> str | None:
    """The state ``is_<suffix>`` refers to: an exact name, else a case-insensitive match."""
    states = machine.states
    if suffix in states:
        return suffix
    matches = [s for s in states if s.lower() == suffix.lower()]
    return matches[0] if len(matches) == 1 else None
