"""``StateMachine``: a compiled machine definition plus its guards, actions and observer.

The machine holds no entity state: ``process(state, trigger, context)`` is a pure function of
its arguments (and of the guards it calls). ``create()`` gives a stateful
:class:`~pystator.fsm_core.session.EntitySession` for one entity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.compiler import CompiledMachine
from pystator.fsm_core.configuration import ParallelConfiguration, parse_configuration
from pystator.fsm_core.contract import default_context
from pystator.fsm_core.decision import Clock, Decider, utc_now
from pystator.fsm_core.definition import (
    ErrorPolicy,
    MachineDefinition,
    StateKind,
    TransitionSpec,
)
from pystator.fsm_core.errors import InvalidStateError
from pystator.fsm_core.guards import GuardFn, GuardRegistry
from pystator.fsm_core.hooks import TransitionObserver
from pystator.fsm_core.loading import (
    load_definition,
    parse_json,
    parse_yaml,
    read_text,
    validate_config,
)
from pystator.fsm_core.results import TimerSpec, TransitionResult
from pystator.fsm_core.session import EntitySession

_F = TypeVar("_F", bound=Callable[..., Any])


class StateMachine:
    """A machine compiled once from its definition; ``process`` is a lookup plus guard calls."""

    def __init__(self, definition: MachineDefinition, *, clock: Clock = utc_now) -> None:
        """Wrap an already validated definition (use :meth:`from_dict` / :meth:`from_yaml`).

        ``clock`` gives the time of ``timestamp:`` effects when ``process`` is not told ``now``.
        """
        self.definition = definition
        self._compiled = CompiledMachine(definition)
        self.guard_registry = GuardRegistry()
        self.action_registry = ActionRegistry()
        self._observer: TransitionObserver | None = None
        self._decider = Decider(self._compiled, self._resolve_guard, clock)
        # Without an observer, ``process`` *is* the decider's closure: no extra call per event.
        self.process = self._decider.fast_process  # type: ignore[method-assign]
        #: The machine registry's version number this definition was loaded from (None when it
        #: came from a file or from code); recorded on every transition the fleet applies.
        self.registry_version: int | None = None

    # construction ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], *, source: str | None = None) -> StateMachine:
        """Build from a dict (the parsed YAML/JSON document)."""
        return cls(load_definition(config, source=source))

    @staticmethod
    def validate_config(config: Any) -> list[str]:
        """Every problem of ``config`` as ``path: message`` lines (empty: it would load)."""
        return validate_config(config, strict=False)

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> StateMachine:
        """Build from a YAML file; a string holding a newline is read as YAML text itself."""
        if isinstance(path_or_text, str) and "\n" in path_or_text:
            return cls.from_dict(parse_yaml(path_or_text), source="<yaml>")
        source = str(path_or_text)
        return cls.from_dict(parse_yaml(read_text(path_or_text), source=source), source=source)

    @classmethod
    def from_json(cls, text: str, *, source: str | None = None) -> StateMachine:
        """Build from JSON text."""
        return cls.from_dict(parse_json(text, source=source), source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> StateMachine:
        """Build from a ``.yaml``/``.yml`` or ``.json`` file."""
        if str(path).endswith(".json"):
            return cls.from_json(read_text(path), source=str(path))
        return cls.from_yaml(Path(path))

    # description ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """``meta.machine_name``."""
        return self.definition.meta.name

    @property
    def version(self) -> str:
        """``meta.version``."""
        return self.definition.meta.version

    @property
    def meta(self) -> dict[str, Any]:
        """The ``meta`` block as written (e.g. ``machine.meta["validate_context"]``)."""
        return dict(self.definition.meta.raw)

    @property
    def strict_mode(self) -> bool:
        """``meta.strict_mode``: unknown events and unregistered guards fail (the default)."""
        return self.definition.meta.strict_mode

    @property
    def error_policy(self) -> ErrorPolicy:
        """``error_policy`` with ``meta.orchestrator_default_fallback`` as its mode."""
        return self.definition.error_policy

    @property
    def clock(self) -> Clock:
        """The clock of ``timestamp:`` effects when ``process`` is not given ``now``."""
        return self._decider.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._decider.clock = clock

    def default_context(self) -> dict[str, Any]:
        """The ``default`` of every ``state_variables`` entry that declares one."""
        return default_context(self.definition)

    def classify(self, context: Mapping[str, Any]) -> str | None:
        """The first state (definition order) whose ``when`` checks all hold for ``context``."""
        for state in self.definition.states:
            if state.when and all(check.predicate(context) for check in state.when):
                return state.name
        return None

    @property
    def states(self) -> tuple[str, ...]:
        """Every state name, in definition order."""
        return tuple(s.name for s in self.definition.states)

    @property
    def triggers(self) -> tuple[str, ...]:
        """Every trigger, sorted."""
        return tuple(sorted(self._compiled.triggers))

    @property
    def transitions(self) -> tuple[TransitionSpec, ...]:
        """The transition rules as defined (state timeouts not included)."""
        return self.definition.transitions

    def has_trigger(self, trigger: str) -> bool:
        """True when some transition (or state timeout) uses ``trigger`` (after
        ``meta.event_normalizer``)."""
        return self._decider.normalize(trigger) in self._compiled.triggers

    def accepts_trigger(self, trigger: str) -> bool:
        """True when ``process`` may be sent ``trigger``: a known trigger, or any trigger when
        ``meta.reject_invalid_events`` is false (unknown ones are then no-ops)."""
        return self.has_trigger(trigger) or not self.definition.meta.reject_invalid_events

    def has_state(self, state: str) -> bool:
        """True for a state name or a valid encoded parallel configuration."""
        try:
            self._decider.row(state)
        except InvalidStateError:
            return False
        return True

    def get_initial_state(self) -> str:
        """The configuration a new entity starts in (a leaf, or an encoded parallel state)."""
        return self._compiled.initial

    def get_available_transitions(self, state: str) -> list[TransitionSpec]:
        """The transitions that may fire from ``state`` (guards not evaluated), in priority order."""
        row = self._decider.row(state)
        if row.terminal:
            return []
        found: dict[int, TransitionSpec] = {}
        for per_leaf in row.candidates.values():
            for candidates in per_leaf:
                for candidate in candidates:
                    found.setdefault(candidate.transition.index, candidate.transition)
        return [found[i] for i in sorted(found)]

    def allowed_triggers(self, state: str) -> list[str]:
        """The triggers some transition accepts from ``state`` (guards not evaluated)."""
        row = self._decider.row(state)
        return [] if row.terminal else sorted(row.candidates)

    def is_terminal(self, state: str) -> bool:
        """True when ``state`` (or its configuration) is terminal."""
        return self._decider.row(state).terminal

    def active_states(self, state: str) -> frozenset[str]:
        """Every state active in ``state``'s configuration (leaves and their ancestors)."""
        return frozenset(
            n for n in self._decider.row(state).active if self._compiled.tree.is_state(n)
        )

    def timers_for_state(self, state: str) -> tuple[TimerSpec, ...]:
        """The ``after:``/``timeout:`` timers that entering ``state`` arms."""
        return self._compiled.timers.get(state, ())

    # guards, actions, hooks -----------------------------------------------------------------

    def guard(self, name: str | None = None) -> Callable[[_F], _F]:
        """Decorator registering a guard on this machine: ``@machine.guard("is_full_fill")``."""

        def wrap(fn: _F) -> _F:
            self.guard_registry.register(name or fn.__name__, fn)
            return fn

        return wrap

    def action(self, name: str | None = None) -> Callable[[_F], _F]:
        """Decorator registering an action on this machine: ``@machine.action("notify")``."""

        def wrap(fn: _F) -> _F:
            self.action_registry.register(name or fn.__name__, fn)
            return fn

        return wrap

    def bind_guards(self, registry: GuardRegistry) -> None:
        """Make ``registry`` this machine's guard registry (shared, so later additions count).

        Guards registered on the machine before (``@machine.guard``) are carried over unless
        ``registry`` already has a guard of that name.
        """
        self.guard_registry = _adopt(self.guard_registry, registry)

    def bind_actions(self, registry: ActionRegistry) -> None:
        """Make ``registry`` this machine's action registry (same rules as :meth:`bind_guards`)."""
        self.action_registry = _adopt(self.action_registry, registry)

    def attach_observer(self, observer: TransitionObserver) -> None:
        """Send every ``process``/``aprocess`` of this machine to ``observer``'s hooks."""
        self._observer = observer
        self.process = self._observed_process  # type: ignore[method-assign]

    def detach_observer(self) -> None:
        """Stop notifying the attached observer."""
        self._observer = None
        self.process = self._decider.fast_process  # type: ignore[method-assign]

    @property
    def observer(self) -> TransitionObserver | None:
        """The attached observer, if any."""
        return self._observer

    def _resolve_guard(self, name: str) -> tuple[GuardFn, bool] | None:
        registry = self.guard_registry
        fn = registry.get(name)
        return None if fn is None else (fn, registry.is_async(name))

    # processing -----------------------------------------------------------------------------

    def process(
        self,
        current_state: str,
        trigger: str,
        context: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        """Compute the transition of ``trigger`` from ``current_state``. Pure; never persists.

        ``now`` is the time ``timestamp:`` effects record (default: the machine's clock);
        ``result.context`` is the context after the transition's effects (None: unchanged).
        """
        # Replaced per instance by the decider's closure (or the observed variant); this body
        # is what both do.
        return self._observed_process(current_state, trigger, context, now)

    def _observed_process(
        self,
        current_state: str,
        trigger: str,
        context: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        observer = self._observer
        if observer is None:
            return self._decider.fast_process(current_state, trigger, context, now)
        start = _notify_start(observer, current_state, trigger, context)
        try:
            result = self._decider.fast_process(current_state, trigger, context, now)
        except Exception as exc:
            observer.notify_error(current_state, trigger, exc)
            raise
        observer.notify_complete(result, (time.perf_counter() - start) * 1000)
        return result

    async def aprocess(
        self,
        current_state: str,
        trigger: str,
        context: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        """Like :meth:`process`, awaiting async guards."""
        observer = self._observer
        if observer is None:
            return await self._decider.aprocess(current_state, trigger, context, now)
        start = _notify_start(observer, current_state, trigger, context)
        try:
            result = await self._decider.aprocess(current_state, trigger, context, now)
        except Exception as exc:
            observer.notify_error(current_state, trigger, exc)
            raise
        observer.notify_complete(result, (time.perf_counter() - start) * 1000)
        return result

    def fallback(
        self,
        current_state: str,
        trigger: str,
        context: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> TransitionResult:
        """The move to ``error_policy.default_fallback`` from ``current_state`` (exits everything
        active, enters the fallback with its actions and effects). Pure, like :meth:`process`."""
        target = self.definition.error_policy.default_fallback
        if target is None:
            raise InvalidStateError(
                f"machine {self.name!r} has no error_policy.default_fallback", state=None
            )
        return self._decider.forced(current_state, trigger, context, target, now)

    # parallel states ------------------------------------------------------------------------

    def enter_parallel_state(self, name: str) -> ParallelConfiguration:
        """The configuration entering parallel state ``name`` starts in (regions' initials)."""
        state = self._compiled.tree.states.get(name)
        if state is None or state.kind is not StateKind.PARALLEL:
            raise InvalidStateError(f"{name!r} is not a parallel state", state=name)
        config = parse_configuration(self._compiled.default_configuration(name))
        assert config is not None  # a parallel state's configuration is always encoded
        return config

    def process_parallel(
        self,
        config: ParallelConfiguration | str,
        event: str,
        context: Mapping[str, Any] | None = None,
    ) -> tuple[ParallelConfiguration | str, list[TransitionResult]]:
        """Apply ``event`` to every region of ``config``; return the new configuration and results.

        The new configuration is a :class:`ParallelConfiguration` while the machine stays in
        the parallel state, else the plain state it moved to. A rejected event leaves it as is.
        """
        state = config.encoded if isinstance(config, ParallelConfiguration) else config
        result = self.process(state, event, context)
        if not result.success or result.target_state is None:
            return config, [result]
        return _as_configuration(result.target_state), [result]

    # sessions -------------------------------------------------------------------------------

    def create(
        self, context: Mapping[str, Any] | None = None, initial_state: str | None = None
    ) -> EntitySession:
        """A stateful session for one entity, starting in ``initial_state`` (default: initial)."""
        return EntitySession(self, context=context, state=initial_state)

    def __repr__(self) -> str:
        return f"StateMachine(name={self.name!r}, states={len(self.definition.states)})"


def _as_configuration(encoded: str) -> ParallelConfiguration | str:
    return parse_configuration(encoded) or encoded


_Registry = TypeVar("_Registry", GuardRegistry, ActionRegistry)


def _adopt(current: _Registry, registry: _Registry) -> _Registry:
    """``registry``, after copying in the entries of ``current`` it does not have."""
    if registry is not current:
        for name in current.names():
            fn = current.get(name)
            if fn is not None and name not in registry:
                registry.register(name, fn)
    return registry


def _notify_start(
    observer: TransitionObserver, state: str, trigger: str, context: Mapping[str, Any] | None
) -> float:
    """Tell the hooks an evaluation starts; returns the start time for its duration."""
    ctx = context or {}
    observer.notify_before_process(state, trigger, ctx)
    observer.notify_start(state, trigger, ctx)
    return time.perf_counter()
