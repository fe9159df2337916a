"""``StateMachine``: a compiled machine definition plus its guards, actions and observer.

The machine holds no entity state: ``process(state, trigger, context)`` is a pure function of
its arguments (and of the guards it calls). ``create()`` gives a stateful
:class:`~pystator.fsm_core.session.EntitySession` for one entity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.classification import ClassificationRules
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.compiler import CompiledMachine
from pystator.fsm_core.configuration import ParallelConfiguration, parse_configuration
from pystator.fsm_core.decision import Decider
from pystator.fsm_core.definition import ErrorPolicy, MachineDefinition, StateKind
from pystator.fsm_core.errors import InvalidStateError
from pystator.fsm_core.guards import GuardFn, GuardRegistry
from pystator.fsm_core.hooks import TransitionObserver, current_entity
from pystator.fsm_core.introspection import MachineIntrospection
from pystator.fsm_core.loading import (
    load_definition,
    parse_json,
    parse_yaml,
    read_document,
    read_text,
    validate_config,
)
from pystator.fsm_core.records import CREATED_TRIGGER
from pystator.fsm_core.results import ActionCall, TransitionResult
from pystator.fsm_core.session import EntitySession

_F = TypeVar("_F", bound=Callable[..., Any])
#: ``on_enter``/``on_exit`` callback: called with the entity's context (a session's own dict).
StateCallback = Callable[[dict[str, Any]], Any]


class StateMachine(MachineIntrospection):
    """A machine compiled once from its definition; ``process`` is a lookup plus guard calls.

    The read-only queries (``state_names``, ``get_available_transitions``, ``evaluate_destination``
    …) come from :class:`~pystator.fsm_core.introspection.MachineIntrospection`.
    """

    def __init__(
        self,
        definition: MachineDefinition,
        *,
        clock: Clock = utc_now,
        hooks: Sequence[object] = (),
    ) -> None:
        """Wrap an already validated definition (use :meth:`from_dict` / :meth:`from_yaml`).

        ``clock`` gives the time of ``timestamp:`` effects when ``process`` is not told ``now``;
        ``hooks`` are :class:`~pystator.fsm_core.hooks.TransitionHook` objects told about every
        ``process``/``aprocess`` (without hooks, ``process`` pays nothing for them).
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
        self._states_by_name = {s.name: s for s in definition.states}
        #: The states' ``when`` rules and ``meta.classification``, compiled once.
        self.classification_rules = ClassificationRules.from_definition(definition)
        #: True while hooks or on_enter/on_exit callbacks are attached (sessions then take
        #: their full path; without them they skip it).
        self.has_listeners = False
        self._enter_callbacks: dict[str, list[StateCallback]] = {}
        self._exit_callbacks: dict[str, list[StateCallback]] = {}
        for hook in hooks:
            self.add_hook(hook)

    # construction ---------------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls,
        config: Mapping[str, Any],
        *,
        source: str | None = None,
        hooks: Sequence[object] = (),
    ) -> StateMachine:
        """Build from a dict (the parsed YAML/JSON document)."""
        return cls(load_definition(config, source=source), hooks=hooks)

    @staticmethod
    def validate_config(config: Any) -> list[str]:
        """Every problem of ``config`` as ``path: message`` lines (empty: it would load)."""
        return validate_config(config, strict=False)

    @classmethod
    def from_yaml(cls, path: str | Path, *, hooks: Sequence[object] = ()) -> StateMachine:
        """Build from a YAML file; a string holding a newline is read as YAML text itself."""
        if isinstance(path, str) and "\n" in path:
            return cls.from_dict(parse_yaml(path), source="<yaml>", hooks=hooks)
        source = str(path)
        config = parse_yaml(read_text(path), source=source)
        return cls.from_dict(config, source=source, hooks=hooks)

    @classmethod
    def from_json(
        cls, text: str, *, source: str | None = None, hooks: Sequence[object] = ()
    ) -> StateMachine:
        """Build from JSON text."""
        return cls.from_dict(parse_json(text, source=source), source=source, hooks=hooks)

    @classmethod
    def from_file(cls, path: str | Path, *, hooks: Sequence[object] = ()) -> StateMachine:
        """Build from a ``.yaml``/``.yml`` or ``.json`` file."""
        return cls.from_dict(read_document(path), source=str(path), hooks=hooks)

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

    # lifecycle callbacks --------------------------------------------------------------------

    def on_enter(
        self, state: str, fn: StateCallback | None = None
    ) -> Callable[[StateCallback], StateCallback] | StateCallback:
        """Register ``fn(context)`` to run when an :class:`EntitySession` enters ``state``.

        Usable as ``machine.on_enter("OPEN", fn)`` or as a decorator ``@machine.on_enter("OPEN")``.
        These are in-process lifecycle callbacks, not the YAML ``on_enter`` actions (which
        ``process`` plans and the Orchestrator runs).
        """
        return self._lifecycle(self._enter_callbacks, state, fn)

    def on_exit(
        self, state: str, fn: StateCallback | None = None
    ) -> Callable[[StateCallback], StateCallback] | StateCallback:
        """Register ``fn(context)`` to run when an :class:`EntitySession` leaves ``state``."""
        return self._lifecycle(self._exit_callbacks, state, fn)

    def _lifecycle(
        self, table: dict[str, list[StateCallback]], state: str, fn: StateCallback | None
    ) -> Callable[[StateCallback], StateCallback] | StateCallback:
        self.validate_state(state)

        def register(callback: StateCallback) -> StateCallback:
            if not callable(callback):
                raise TypeError(f"a state callback must be callable, got {type(callback).__name__}")
            table.setdefault(state, []).append(callback)
            self.has_listeners = True
            return callback

        return register if fn is None else register(fn)

    def lifecycle_callbacks(self, result: TransitionResult) -> list[tuple[str, str, StateCallback]]:
        """The ``on_exit`` then ``on_enter`` callbacks a successful ``result`` calls, as
        ``(kind, state, fn)`` in exit (leaf first) then entry (root first) order."""
        if not (self._enter_callbacks or self._exit_callbacks) or not result.success:
            return []
        found = [
            ("exit", state, fn)
            for state in result.states_exited
            for fn in self._exit_callbacks.get(state, ())
        ]
        found.extend(
            ("enter", state, fn)
            for state in result.states_entered
            for fn in self._enter_callbacks.get(state, ())
        )
        return found

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

    def bind_guards(self, guards: GuardRegistry) -> None:
        """Make ``guards`` this machine's guard registry (shared, so later additions count).

        Guards registered on the machine before (``@machine.guard``) are carried over unless
        ``guards`` already has a guard of that name.
        """
        self.guard_registry = _adopt(self.guard_registry, guards)

    def bind_actions(self, actions: ActionRegistry) -> None:
        """Make ``actions`` this machine's action registry (same rules as :meth:`bind_guards`)."""
        self.action_registry = _adopt(self.action_registry, actions)

    def attach_observer(self, observer: TransitionObserver) -> None:
        """Send every ``process``/``aprocess`` of this machine to ``observer``'s hooks."""
        self._observer = observer
        self.has_listeners = True
        self.process = self._observed_process  # type: ignore[method-assign]

    def detach_observer(self) -> None:
        """Stop notifying the attached observer."""
        self._observer = None
        self.has_listeners = bool(self._enter_callbacks or self._exit_callbacks)
        self.process = self._decider.fast_process  # type: ignore[method-assign]

    @property
    def observer(self) -> TransitionObserver | None:
        """The attached observer, if any."""
        return self._observer

    def add_hook(self, hook: object) -> None:
        """Tell ``hook`` about every ``process``/``aprocess`` (attaches an observer if needed)."""
        observer = self._observer
        if observer is None:
            observer = TransitionObserver()
            self.attach_observer(observer)
        if not any(h is hook for h in observer.hooks):
            observer.add_hook(hook)

    def remove_hook(self, hook: object) -> None:
        """Stop telling ``hook`` (no error if it is not attached)."""
        if self._observer is not None:
            self._observer.remove_hook(hook)

    @property
    def hooks(self) -> tuple[object, ...]:
        """The hooks told about every evaluation, in the order they were added."""
        return () if self._observer is None else self._observer.hooks

    def _resolve_guard(self, name: str) -> tuple[GuardFn, bool] | None:
        return self.guard_registry.resolve(name)

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
        ctx = context or {}
        start = _notify_start(observer, current_state, trigger, ctx)
        try:
            result = self._decider.fast_process(current_state, trigger, context, now)
        except Exception as exc:
            observer.notify_error(exc, current_state, trigger, ctx)
            raise
        observer.notify_complete(result, (time.perf_counter() - start) * 1000, ctx)
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
        ctx = context or {}
        start = _notify_start(observer, current_state, trigger, ctx)
        try:
            result = await self._decider.aprocess(current_state, trigger, context, now)
        except Exception as exc:
            observer.notify_error(exc, current_state, trigger, ctx)
            raise
        observer.notify_complete(result, (time.perf_counter() - start) * 1000, ctx)
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

    def initial_entry(
        self,
        context: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        *,
        trigger: str = CREATED_TRIGGER,
    ) -> TransitionResult:
        """What a new entity entering the initial configuration does, decided on ``context`` as a
        transition's entry is: every state of the configuration entered outermost first, their
        ``on_enter`` entries in order (``when`` evaluated, effects applied: ``result.context``,
        skipped entries in ``metadata["skipped_actions"]``), their timers in ``timers_to_arm``.
        Pure, like :meth:`process`; ``trigger`` labels the result."""
        return self._decider.entry(trigger, context, now)

    # parallel states ------------------------------------------------------------------------

    def enter_parallel_state(self, parallel_state_name: str) -> ParallelConfiguration:
        """The configuration entering ``parallel_state_name`` starts in (regions' initials)."""
        name = parallel_state_name
        state = self._compiled.tree.states.get(name)
        if state is None or state.kind is not StateKind.PARALLEL:
            raise InvalidStateError(f"{name!r} is not a parallel state", state=name)
        config = parse_configuration(self._compiled.default_configuration(name))
        assert config is not None  # a parallel state's configuration is always encoded
        return config

    def is_parallel_state(self, name: str) -> bool:
        """True when ``name`` is a parallel state."""
        state = self._states_by_name.get(name)
        return state is not None and state.kind is StateKind.PARALLEL

    async def aprocess_parallel(
        self,
        config: ParallelConfiguration | str,
        trigger: str | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        event: str | None = None,
    ) -> tuple[ParallelConfiguration | str, list[TransitionResult]]:
        """Like :meth:`process_parallel`, awaiting async guards."""
        state = config.encoded if isinstance(config, ParallelConfiguration) else config
        result = await self.aprocess(state, _trigger_of(trigger, event), context)
        return self._per_region(config, result, context)

    def process_parallel(
        self,
        config: ParallelConfiguration | str,
        trigger: str | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        event: str | None = None,
    ) -> tuple[ParallelConfiguration | str, list[TransitionResult]]:
        """Apply ``trigger`` to every region of ``config``: the new configuration, and one
        :class:`TransitionResult` per region that moved (in region order).

        The new configuration is a :class:`ParallelConfiguration` while the machine stays in
        the parallel state, else the plain state it moved to (then the one result is that
        transition's). A rejected trigger leaves ``config`` as is, with the rejection as the
        only result. Each region's result goes from ``config`` to ``config`` with only that
        region moved, and holds only that region's actions; the combined view of the whole
        step (all actions, exit → transition → enter) is :meth:`process_parallel_combined`.
        ``event=`` is accepted as the seed README's name of ``trigger``.
        """
        state = config.encoded if isinstance(config, ParallelConfiguration) else config
        result = self.process(state, _trigger_of(trigger, event), context)
        return self._per_region(config, result, context)

    def process_parallel_combined(
        self,
        config: ParallelConfiguration | str,
        trigger: str | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        event: str | None = None,
    ) -> tuple[ParallelConfiguration | str, TransitionResult]:
        """The combined view of :meth:`process_parallel`: one result for the whole step, from
        ``config`` to the new configuration (``'RUN[motor=ON,light=LIT]'``), with the actions
        of every region that moved, in exit → transition → enter order."""
        state = config.encoded if isinstance(config, ParallelConfiguration) else config
        result = self.process(state, _trigger_of(trigger, event), context)
        if not result.success or result.target_state is None:
            return config, result
        return _as_configuration(result.target_state), result

    def _per_region(
        self,
        config: ParallelConfiguration | str,
        result: TransitionResult,
        context: Mapping[str, Any] | None,
    ) -> tuple[ParallelConfiguration | str, list[TransitionResult]]:
        if not result.success or result.target_state is None:
            return config, [result]
        parts = [self._decider.resolve_part(part, context) for part in result.regions]
        return _as_configuration(result.target_state), parts or [result]

    def validate_parallel_config(self, config: ParallelConfiguration | str) -> None:
        """Raise :class:`InvalidStateError` (or :class:`UndefinedStateError`) unless ``config`` is
        a complete configuration of one of this machine's parallel states: its regions in
        order, each at one of that region's own states."""
        encoded = config.encoded if isinstance(config, ParallelConfiguration) else config
        if parse_configuration(encoded) is None:
            raise InvalidStateError(
                f"{encoded!r} is not a parallel configuration (expected e.g. "
                f"'state[region=leaf,...]')",
                state=encoded,
            )
        self._compiled.row(encoded)

    def get_parallel_exit_actions(
        self, config: ParallelConfiguration | str
    ) -> tuple[ActionCall, ...]:
        """The exit actions leaving the parallel state of ``config`` runs: every region's active
        states (deepest first), then the parallel state's own ``on_exit``. Conditional actions
        (``when:``) are decided when a transition is processed and are not listed."""
        self.validate_parallel_config(config)
        encoded = config.encoded if isinstance(config, ParallelConfiguration) else config
        parsed = parse_configuration(encoded)
        assert parsed is not None  # validated above
        return self._compiled.exit_calls(self._compiled.row(encoded).active, parsed.state)

    # sessions -------------------------------------------------------------------------------

    def create(
        self,
        context: Mapping[str, Any] | None = None,
        initial_state: str | None = None,
        *,
        entity_id: str | None = None,
        execute_actions: bool = False,
        defer_unhandled: bool = False,
    ) -> EntitySession:
        """A stateful session for one entity, starting in ``initial_state`` (default: initial).

        ``execute_actions=True`` runs the planned actions locally after each transition (their
        outcomes in ``result.metadata["action_results"]``); by default they are only planned.
        """
        return EntitySession(
            self,
            context=context,
            state=initial_state,
            entity_id=entity_id,
            execute_actions=execute_actions,
            defer_unhandled=defer_unhandled,
        )

    def create_from_snapshot(self, snapshot: Mapping[str, Any]) -> EntitySession:
        """A session restored from :meth:`EntitySession.snapshot`."""
        return EntitySession.from_snapshot(self, snapshot)

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
    observer: TransitionObserver, state: str, trigger: str, ctx: Mapping[str, Any]
) -> float:
    """Tell the hooks an evaluation starts; returns the start time for its duration."""
    observer.notify_before_process(current_entity(ctx), state, trigger, ctx)
    observer.notify_start(state, trigger, ctx)
    return time.perf_counter()


def _trigger_of(trigger: str | None, event: str | None) -> str:
    """``trigger``, or ``event`` (the seed README's name of the same argument): exactly one."""
    if (trigger is None) == (event is None):
        raise TypeError("pass the trigger once, as trigger= (or event=)")
    return trigger if trigger is not None else event  # type: ignore[return-value]
