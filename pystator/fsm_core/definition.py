"""The frozen machine definition: what a YAML/JSON document says, checked for shape.

:func:`parse_definition` (in :mod:`pystator.fsm_core.parsing`) turns a raw mapping into a
:class:`MachineDefinition` and collects every shape problem with its path, so a user sees all of
them at once. Cross-references (unknown states, initial states, terminal states with
transitions …) are checked afterwards by :mod:`pystator.fsm_core.validation`.

Everything a definition can say is here, already compiled where that matters at run time: inline
expressions, ``check:`` guards, composite conditions and declarative effects are closures, built
once when the machine loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, TypeAlias

from pystator.fsm_core.checks import CheckSpec
from pystator.fsm_core.conditions import Condition
from pystator.fsm_core.effects import Effect
from pystator.fsm_core.expressions import CompiledExpression
from pystator.fsm_core.when import ClassificationSettings, WhenCheck

DEFAULT_VERSION = "1.0.0"
DEFAULT_TIMEOUT_TRIGGER = "timeout"
DEFAULT_MACHINE_NAME = "unnamed"

Predicate: TypeAlias = Callable[[Mapping[str, Any]], bool]
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


class StateKind(str, Enum):
    """The ``type`` of a state."""

    INITIAL = "initial"
    STABLE = "stable"
    TERMINAL = "terminal"
    ERROR = "error"  # an ordinary state meant as error_policy.default_fallback
    PARALLEL = "parallel"
    CHOICE = "choice"  # a routing point: never rested in, its branches are taken at once


class FallbackMode(str, Enum):
    """``meta.orchestrator_default_fallback``: what an invalid event does under an error policy."""

    OFF = "off"
    HINT = "hint"
    PERSIST = "persist"


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorPolicy:
    """``error_policy`` (with ``meta.orchestrator_default_fallback`` as ``mode``).

    ``retry_attempts`` is None when the definition does not set it (callers keep their own
    default then).
    """

    default_fallback: str | None = None
    retry_attempts: int | None = None
    mode: FallbackMode = FallbackMode.OFF

    def max_attempts(self, default: int) -> int:
        """Attempts allowed for a failing guard or action: ``1 + retry_attempts``, or ``default``."""
        return default if self.retry_attempts is None else 1 + self.retry_attempts

    @property
    def active(self) -> bool:
        """True when a fallback state is set and the mode is not ``off``."""
        return self.default_fallback is not None and self.mode is not FallbackMode.OFF


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardSpec:
    """One entry of a transition's ``guards``.

    Exactly one way of evaluating it is set: ``name`` (a registered guard, with ``params``),
    ``predicate`` (an ``expr:``, a ``check:`` or a composite without named guards, compiled into
    one closure) or ``condition`` (a composite that names guards, resolved when evaluated).
    """

    label: str
    name: str | None = None
    params: Mapping[str, Any] = field(default_factory=_empty)
    expression: CompiledExpression | None = None
    predicate: Predicate | None = field(default=None, compare=False)
    condition: Condition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchSpec:
    """``branch: {when, then, else}``: the ``then`` actions when ``when`` holds, else the others."""

    when: Predicate = field(compare=False)
    when_label: str
    then: tuple[ActionSpec, ...] = ()
    otherwise: tuple[ActionSpec, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSpec:
    """One entry of an action list: a named action, a declarative effect or a branch.

    ``when`` (any entry) makes it conditional; ``retry``/``retry_backoff``/``timeout`` tune how
    the executor runs a named action.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=_empty)
    when: Predicate | None = field(default=None, compare=False)
    when_label: str | None = None
    effect: Effect | None = None
    branch: BranchSpec | None = None
    retry: int | None = None
    retry_backoff: float | None = None
    timeout: float | None = None

    @property
    def is_named(self) -> bool:
        """True for a named action (run by the executor after commit)."""
        return self.effect is None and self.branch is None

    @property
    def dynamic(self) -> bool:
        """True when the engine must look at the context to plan it (effect, branch, when)."""
        return self.effect is not None or self.branch is not None or self.when is not None


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
    description: str | None = None


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
    group: str | None = None
    when: tuple[WhenCheck, ...] = ()  # classification rules: all entries must hold
    invoke: tuple[Any, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def type(self) -> StateKind:
        """The documented name of :attr:`kind` (a :class:`StateType`)."""
        return self.kind

    @property
    def is_initial(self) -> bool:
        """True for the machine's initial state (``type: initial``, or the one it starts in)."""
        return self.machine_initial or self.kind is StateKind.INITIAL

    @property
    def is_terminal(self) -> bool:
        """True for a terminal state."""
        return self.kind is StateKind.TERMINAL

    @property
    def is_parallel(self) -> bool:
        """True for a parallel state (its regions run side by side)."""
        return self.kind is StateKind.PARALLEL

    @property
    def is_compound(self) -> bool:
        """True for a state with child states (it has an ``initial`` child)."""
        return self.initial_child is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionSpec:
    """One transition rule: on ``trigger`` from any of ``sources`` to ``dest``.

    ``any_source`` records a ``source: "*"`` (already expanded into ``sources``);
    ``declared_trigger`` is False when the engine named the trigger (a trigger-less ``after:``
    or a choice state's branch).
    """

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
    region: str | None = None
    any_source: bool = False
    declared_trigger: bool = True
    refs: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def source(self) -> frozenset[str]:
        """The source states as a set (the documented shape of :attr:`sources`)."""
        return frozenset(self.sources)

    @property
    def after(self) -> int | None:
        """The ``after:`` delay in milliseconds (None: not delayed)."""
        return self.after_ms

    @property
    def is_delayed(self) -> bool:
        """True for an ``after:`` transition."""
        return self.after_ms is not None

    def matches(self, state: str, trigger: str) -> bool:
        """True when this rule fires on ``trigger`` from ``state`` (guards not evaluated)."""
        return trigger == self.trigger and state in self.sources


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineMeta:
    """The ``meta`` block.

    ``strict_mode`` is the documented default of the two runtime switches below it;
    ``validate_context`` holds pystator's own required-key form (``[keys]`` or ``{STATE: [keys]}``)
    and ``check_contract`` the documented ``validate_context: true``.
    """

    name: str
    version: str = DEFAULT_VERSION
    strict_mode: bool = True
    reject_invalid_events: bool = True
    strict_guard_registry: bool = True
    event_normalizer: str | None = None
    validate_context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    check_contract: bool = False
    description: str | None = None
    classification: ClassificationSettings | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StateVariable:
    """One ``state_variables`` entry: a context key of the machine's contract."""

    key: str
    type: str | None = None
    required: bool = False
    default: Any = None
    has_default: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextInvariant:
    """One ``context_invariants`` rule, checked when ``meta.validate_context`` is true."""

    name: str
    check: CheckSpec
    path: str
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSpec:
    """One ``groups`` entry (metadata for tools; the engine does not use it)."""

    name: str
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDoc:
    """One ``events`` entry (documentation only)."""

    name: str
    description: str | None = None
    payload: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineDefinition:
    """A whole machine: meta, every state (nested ones flattened, in document order), rules."""

    meta: MachineMeta
    states: tuple[StateSpec, ...]
    transitions: tuple[TransitionSpec, ...]
    regions: tuple[RegionSpec, ...] = ()
    groups: tuple[GroupSpec, ...] = ()
    error_policy: ErrorPolicy = field(default_factory=ErrorPolicy)
    state_variables: tuple[StateVariable, ...] = ()
    invariants: tuple[ContextInvariant, ...] = ()
    events: tuple[EventDoc, ...] = ()
    #: The document this definition was parsed from (what a definition store keeps).
    document: Mapping[str, Any] = field(default_factory=_empty, repr=False, compare=False)

    @property
    def name(self) -> str:
        """``meta.machine_name``."""
        return self.meta.name

    @property
    def version(self) -> str:
        """``meta.version``."""
        return self.meta.version


# The documented names of the definition model: these ARE the classes above, not copies.
#: ``StateType.INITIAL`` / ``STABLE`` / ``TERMINAL`` / ``PARALLEL`` / ``ERROR`` / ``CHOICE``.
StateType = StateKind
#: One state of a machine (``machine.get_state("OPEN")``).
State = StateSpec
#: One transition rule (``machine.transitions``, ``machine.get_available_transitions(…)``).
Transition = TransitionSpec
#: One orthogonal region of a parallel state.
Region = RegionSpec
#: A state's ``timeout:`` (delay, destination, trigger).
Timeout = TimeoutSpec
