"""Value objects returned by the engine: the transition result, planned actions and timers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.errors import FSMError

if TYPE_CHECKING:
    from pystator.fsm_core.definition import ActionSpec
    from pystator.fsm_core.plan import Plan

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty_mapping() -> Mapping[str, Any]:
    """The shared read-only empty mapping (a factory: dataclasses refuse unhashable defaults)."""
    return _EMPTY


class SharedMetadata(dict[str, Any]):
    """A ``dict`` that refuses changes: the metadata of a result the engine shares between calls.

    ``process`` returns one precompiled result object for every event that takes the same plain
    transition (that is what makes it a lookup), so that result's metadata cannot be changed in
    place without changing it for every later caller. It is still a real ``dict`` for reading and
    copying (``dict(result.metadata)``, ``{**result.metadata}``, ``.copy()``); results built per
    call (rejections, effects, the Orchestrator's) carry plain dicts.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "this result is shared by every call taking the same transition, so its metadata is "
            "read-only; copy it first: metadata = dict(result.metadata)"
        )

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def copy(self) -> dict[str, Any]:
        """A plain, changeable ``dict`` with the same items."""
        return dict(self)


#: The metadata of results built without any (never changed: see :class:`SharedMetadata`).
EMPTY_METADATA: dict[str, Any] = SharedMetadata()


def _empty_metadata() -> dict[str, Any]:
    return EMPTY_METADATA


class ActionPhase(str, Enum):
    """When an action runs relative to the state change (exit → transition → enter)."""

    EXIT = "exit"
    TRANSITION = "transition"
    ENTER = "enter"


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionCall:
    """One planned action: its registered name, its ``params`` from the YAML, and its phase."""

    name: str
    phase: ActionPhase
    params: Mapping[str, Any] = field(default_factory=_empty_mapping)
    state: str | None = None  # the state whose on_exit/on_enter planned it (None for transitions)
    retry: int | None = None  # extra attempts for this call (the definition's ``retry:``)
    retry_backoff: float | None = None  # seconds before the first retry
    timeout: float | None = None  # seconds an async action may take


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One entry of a transition's action lists that depends on the context (an effect, a branch
    or a ``when``), kept in execution order so the engine can resolve it per event."""

    phase: ActionPhase
    state: str | None
    spec: ActionSpec


class TimerKind(str, Enum):
    """Where a timer comes from: a transition's ``after:`` or a state's ``timeout:``."""

    AFTER = "after"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerSpec:
    """A delayed trigger that entering ``state`` arms and leaving ``state`` cancels.

    ``key`` is unique within the machine and stable across loads of the same definition, so a
    timer id can be derived deterministically from (machine, entity, key, entry).
    """

    key: str
    state: str
    trigger: str
    delay_ms: int
    kind: TimerKind = TimerKind.AFTER


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionResult:
    """The outcome of ``process``: success, target, planned actions and timers.

    ``states_exited`` / ``states_entered`` list the leaf-to-root exited states and root-to-leaf
    entered states (LCA order); ``timers_to_arm`` belong to the entered states and
    ``timers_to_cancel`` to the exited ones. ``context`` is the context after the transition's
    declarative effects (None when it declares none: the context is unchanged).
    """

    success: bool
    source_state: str
    target_state: str | None
    trigger: str
    exit_actions: tuple[ActionCall, ...] = ()
    transition_actions: tuple[ActionCall, ...] = ()
    enter_actions: tuple[ActionCall, ...] = ()
    states_exited: tuple[str, ...] = ()
    states_entered: tuple[str, ...] = ()
    timers_to_arm: tuple[TimerSpec, ...] = ()
    timers_to_cancel: tuple[TimerSpec, ...] = ()
    error: FSMError | None = None
    metadata: dict[str, Any] = field(default_factory=_empty_metadata)
    context: Mapping[str, Any] | None = None
    plan: Plan | None = field(default=None, repr=False, compare=False)
    #: A step moving several parallel regions at once: one result per region that moved
    #: (what ``process_parallel`` returns); empty otherwise.
    regions: tuple[TransitionResult, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def success_result(
        cls,
        source_state: str,
        target_state: str,
        trigger: str,
        *,
        exit_actions: tuple[ActionCall, ...] = (),
        transition_actions: tuple[ActionCall, ...] = (),
        enter_actions: tuple[ActionCall, ...] = (),
        metadata: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> TransitionResult:
        """A successful result built by hand (tests, custom stores and orchestration code)."""
        return cls(
            success=True,
            source_state=source_state,
            target_state=target_state,
            trigger=trigger,
            exit_actions=exit_actions,
            transition_actions=transition_actions,
            enter_actions=enter_actions,
            metadata=dict(metadata or {}),
            context=context,
        )

    @classmethod
    def failure_result(
        cls,
        source_state: str,
        trigger: str,
        error: FSMError | str,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> TransitionResult:
        """A rejected result built by hand; a string ``error`` becomes an :class:`FSMError`.

        ``metadata["reason"]`` defaults to the error's code (``guard_rejected`` …).
        """
        err = error if isinstance(error, FSMError) else FSMError(str(error))
        data = dict(metadata or {})
        data.setdefault("reason", err.code.value.lower())
        return cls(
            success=False,
            source_state=source_state,
            target_state=None,
            trigger=trigger,
            error=err,
            metadata=data,
        )

    @property
    def actions(self) -> tuple[ActionCall, ...]:
        """Every planned action in execution order (exit, transition, enter)."""
        return self.exit_actions + self.transition_actions + self.enter_actions

    @property
    def actions_to_execute(self) -> tuple[ActionCall, ...]:
        """The documented name of :attr:`transition_actions`."""
        return self.transition_actions

    @property
    def on_exit_actions(self) -> tuple[ActionCall, ...]:
        """The documented name of :attr:`exit_actions`."""
        return self.exit_actions

    @property
    def on_enter_actions(self) -> tuple[ActionCall, ...]:
        """The documented name of :attr:`enter_actions`."""
        return self.enter_actions

    @property
    def all_action_specs(self) -> tuple[ActionCall, ...]:
        """The documented name of :attr:`actions` (exit → transition → enter)."""
        return self.actions

    @property
    def all_actions(self) -> tuple[str, ...]:
        """Names of every planned action in execution order (exit, transition, enter)."""
        return tuple(a.name for a in self.actions)

    @property
    def state_changed(self) -> bool:
        """True when the transition succeeded (a self-transition counts: it exits and re-enters)."""
        return self.success and self.target_state is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class DestinationCandidate:
    """One trigger that may lead to the asked destination, and what trying it gave."""

    trigger: str
    executable: bool
    transition_result: TransitionResult
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DestinationCheckResult:
    """``evaluate_destination``: can some trigger take ``source_state`` to ``destination_state``
    now? ``metadata["reason"]`` says why not; ``metadata["ambiguous"]`` when several can."""

    allowed: bool
    source_state: str
    destination_state: str
    candidate_count: int
    passing_count: int
    candidates: tuple[DestinationCandidate, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ambiguous(self) -> bool:
        """True when more than one trigger reaches the destination now."""
        return self.passing_count > 1
