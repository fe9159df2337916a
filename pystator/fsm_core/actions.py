"""Named actions and the executor that runs a transition's planned actions.

Calling convention (decided once, at registration, from the function's signature):

* ``fn(ctx)``               — one positional parameter: the context only;
* ``fn(ctx, params)``       — two required positional parameters: the context and the YAML
  ``params`` mapping of this call (read-only);
* ``fn(ctx, **params)``     — a ``**kwargs`` parameter (or keyword-only parameters and no
  ``*args``): the params as keyword arguments;
* ``fn()``                  — no parameters.

Sync and ``async def`` actions are both supported. The executor runs actions in phase order
exit → transition → enter, retries a failing action according to its :class:`RetryPolicy`
(a call's own ``retry``/``retry_backoff`` from the definition take precedence; the sleep functions
are injectable), bounds an async action by the call's ``timeout`` and reports what happened in an
:class:`ExecutionReport`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, TypeAlias

from pystator.fsm_core.backoff import backoff_ceiling
from pystator.fsm_core.errors import ActionExecutionError, ActionNotFoundError, FSMError
from pystator.fsm_core.guards import is_async_callable
from pystator.fsm_core.results import ActionCall, ActionPhase, TransitionResult

ActionFn: TypeAlias = Callable[..., Any]
SleepFn: TypeAlias = Callable[[float], None]
AsyncSleepFn: TypeAlias = Callable[[float], Awaitable[None]]

DEFAULT_BACKOFF_SECONDS = 0.1
DEFAULT_BACKOFF_MULTIPLIER = 2.0
DEFAULT_MAX_BACKOFF_SECONDS = 10.0
_POSITIONAL_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_PHASE_ORDER = {ActionPhase.EXIT: 0, ActionPhase.TRANSITION: 1, ActionPhase.ENTER: 2}
ACTIONS_LOGGER = logging.getLogger("pystator.actions")
_NO_METADATA: Mapping[str, Any] = MappingProxyType({})


def _no_metadata() -> Mapping[str, Any]:
    return _NO_METADATA


class ExecutionMode(str, Enum):
    """How an executor runs a transition's actions.

    ``SEQUENTIAL``: one after another in plan order (exit → transition → enter).
    ``PHASED``: the same order, phase by phase (identical to SEQUENTIAL when run synchronously).
    ``PARALLEL``: the actions of a phase concurrently (async only; sync execution runs them
    one after another), the phases still in order.
    """

    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    PHASED = "phased"


class CallStyle(str, Enum):
    """How an action function receives the call's ``params`` (see the module docstring)."""

    NONE = "none"
    CONTEXT = "context"
    MAPPING = "mapping"
    KEYWORDS = "keywords"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredAction:
    """An action function with what registration learned about it."""

    name: str
    fn: ActionFn
    is_async: bool
    style: CallStyle
    metadata: Mapping[str, Any] = field(default_factory=_no_metadata)

    def call(self, context: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
        """Call the function with the registered convention (may return an awaitable)."""
        style = self.style
        if style is CallStyle.CONTEXT:
            return self.fn(context)
        if style is CallStyle.MAPPING:
            return self.fn(context, params)
        if style is CallStyle.KEYWORDS:
            return self.fn(context, **params)
        return self.fn()


def call_style_of(fn: ActionFn) -> CallStyle:
    """Decide from ``fn``'s signature how it receives ``params``."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: assume fn(ctx)
        return CallStyle.CONTEXT
    params = list(parameters)
    kinds = {p.kind for p in params}
    positional = [p for p in params if p.kind in _POSITIONAL_KINDS]
    required = sum(p.default is inspect.Parameter.empty for p in positional)
    if required >= 2:
        return CallStyle.MAPPING
    if inspect.Parameter.VAR_KEYWORD in kinds or (
        inspect.Parameter.KEYWORD_ONLY in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds
    ):
        return CallStyle.KEYWORDS
    if positional or inspect.Parameter.VAR_POSITIONAL in kinds:
        return CallStyle.CONTEXT
    return CallStyle.NONE


class ActionRegistry:
    """A name → action function table, shared by machines through ``bind_actions``."""

    __slots__ = ("_actions",)

    def __init__(self) -> None:
        self._actions: dict[str, RegisteredAction] = {}

    def register(
        self, name: str, fn: ActionFn, *, metadata: Mapping[str, Any] | None = None
    ) -> ActionFn:
        """Register ``fn`` under ``name`` (replacing any previous action of that name).

        ``metadata`` is free-form description kept with the action (owner, docs link …);
        :meth:`get_metadata` returns it.
        """
        if not isinstance(name, str) or not name:
            raise ValueError("an action name must be a non-empty string")
        if not callable(fn):
            raise TypeError(f"action {name!r} must be callable, got {type(fn).__name__}")
        self._actions[name] = RegisteredAction(
            name=name,
            fn=fn,
            is_async=is_async_callable(fn),
            style=call_style_of(fn),
            metadata=MappingProxyType(dict(metadata or {})),
        )
        return fn

    def has(self, name: str) -> bool:
        """True when an action called ``name`` is registered."""
        return name in self._actions

    def get_metadata(self, name: str) -> dict[str, Any]:
        """The ``metadata`` given when ``name`` was registered (empty if none or unknown)."""
        entry = self._actions.get(name)
        return {} if entry is None else dict(entry.metadata)

    def execute(self, name: str, context: Mapping[str, Any], **params: Any) -> Any:
        """Run the action ``name`` once with ``context`` (and ``params``); returns its value.

        :class:`ActionNotFoundError` if it is not registered; the action's own exception
        propagates. An ``async`` action runs to completion in a fresh event loop.
        """
        entry = self._actions.get(name)
        if entry is None:
            raise ActionNotFoundError(f"action {name!r} is not registered", action_name=name)
        value = entry.call(context, params)
        if inspect.isawaitable(value):
            value = _run_awaitable(value, name)
        return value

    def execute_all(
        self, names: Iterable[str], context: Mapping[str, Any], *, stop_on_error: bool = False
    ) -> list[ActionOutcome]:
        """Run each action of ``names`` in order; one :class:`ActionResult` per action.

        A failing action is reported (``status == "failed"``), and the next ones still run
        unless ``stop_on_error``. An unregistered name is a failed result with
        :class:`ActionNotFoundError`.
        """
        outcomes: list[ActionOutcome] = []
        for name in names:
            call = ActionCall(name=name, phase=ActionPhase.TRANSITION)
            try:
                value = self.execute(name, context)
            except ActionNotFoundError as exc:
                outcomes.append(ActionOutcome(call=call, success=False, attempts=0, error=exc))
            except Exception as exc:  # reported in the result, like the executor does
                error = ActionExecutionError(
                    f"action {name!r} failed: {type(exc).__name__}: {exc}", action_name=name
                )
                error.__cause__ = exc
                outcomes.append(ActionOutcome(call=call, success=False, attempts=1, error=error))
            else:
                outcomes.append(ActionOutcome(call=call, success=True, attempts=1, value=value))
            if stop_on_error and not outcomes[-1].success:
                break
        return outcomes

    def decorator(self, name: str | ActionFn | None = None) -> Any:
        """``@actions.decorator()`` (the function's name), ``@actions.decorator("name")``,
        or bare ``@actions.decorator``."""
        if callable(name):
            fn = name
            self.register(fn.__name__, fn)
            return fn

        def wrap(fn: ActionFn) -> ActionFn:
            self.register(name or fn.__name__, fn)
            return fn

        return wrap

    def unregister(self, name: str) -> None:
        """Remove the action called ``name`` (no error if it is absent)."""
        self._actions.pop(name, None)

    def get(self, name: str) -> ActionFn | None:
        """The function registered as ``name``, or ``None``."""
        entry = self._actions.get(name)
        return entry.fn if entry else None

    def resolve(self, name: str) -> RegisteredAction | None:
        """The registration record of ``name`` (function, async flag, call style), or ``None``."""
        return self._actions.get(name)

    def is_async(self, name: str) -> bool:
        """Whether the action called ``name`` returns an awaitable (False if it is absent)."""
        entry = self._actions.get(name)
        return entry.is_async if entry else False

    def names(self) -> tuple[str, ...]:
        """Registered action names, in registration order."""
        return tuple(self._actions)

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def __len__(self) -> int:
        return len(self._actions)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._actions))

    def __repr__(self) -> str:
        return f"ActionRegistry({list(self._actions)!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often, and how long apart, a failing action is tried (1 attempt = no retry)."""

    max_attempts: int = 1
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS
    multiplier: float = DEFAULT_BACKOFF_MULTIPLIER
    max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.backoff_seconds < 0 or self.max_backoff_seconds < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy needs backoff >= 0 and multiplier >= 1")

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return backoff_ceiling(
            attempt,
            base_seconds=self.backoff_seconds,
            max_seconds=self.max_backoff_seconds,
            multiplier=self.multiplier,
        )


NO_RETRY = RetryPolicy()


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionOutcome:
    """What happened to one planned action."""

    call: ActionCall
    success: bool
    attempts: int
    error: FSMError | None = None
    value: Any = None

    @property
    def name(self) -> str:
        """The action's registered name."""
        return self.call.name

    @property
    def action_name(self) -> str:
        """Alias of :attr:`name`."""
        return self.call.name

    @property
    def status(self) -> str:
        """``"ok"`` or ``"failed"`` (the documented action statuses)."""
        return "ok" if self.success else "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionReport:
    """The outcomes of one ``execute`` call, in execution order."""

    outcomes: tuple[ActionOutcome, ...] = ()

    @property
    def success(self) -> bool:
        """True when every action succeeded (also for an empty plan)."""
        return all(o.success for o in self.outcomes)

    @property
    def succeeded(self) -> tuple[str, ...]:
        """Names of the actions that succeeded."""
        return tuple(o.name for o in self.outcomes if o.success)

    @property
    def failures(self) -> tuple[ActionOutcome, ...]:
        """Outcomes of the actions that failed after their retries."""
        return tuple(o for o in self.outcomes if not o.success)

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of the actions that failed after their retries."""
        return tuple(o.name for o in self.outcomes if not o.success)


class ActionExecutor:
    """Runs planned actions (exit → transition → enter) with retries.

    ``raise_on_error=True`` (default): the first action still failing after its retries stops
    execution and raises :class:`ActionExecutionError` (the action's exception is the cause).
    ``raise_on_error=False``: every action runs and the report lists the failures.
    An unregistered action always raises :class:`ActionNotFoundError` before anything runs.
    """

    def __init__(
        self,
        registry: ActionRegistry,
        default_mode: ExecutionMode = ExecutionMode.SEQUENTIAL,
        log_execution: bool = False,
        *,
        retry: RetryPolicy = NO_RETRY,
        raise_on_error: bool = True,
        sleep: SleepFn = time.sleep,
        async_sleep: AsyncSleepFn = asyncio.sleep,
    ) -> None:
        """``default_mode`` is the mode of :meth:`async_execute` (``execute`` always runs in
        plan order); ``log_execution=True`` logs every action's outcome on ``pystator.actions``
        (INFO for successes, WARNING for failures)."""
        self.registry = registry
        self.default_mode = ExecutionMode(default_mode)
        self.log_execution = log_execution
        self.retry = retry
        self.raise_on_error = raise_on_error
        self._sleep = sleep
        self._async_sleep = async_sleep

    # --- planning ---------------------------------------------------------------------------

    def _plan(
        self, result: TransitionResult | Iterable[ActionCall]
    ) -> list[tuple[ActionCall, RegisteredAction]]:
        if isinstance(result, TransitionResult):
            calls = list(result.actions) if result.success else []
        else:
            calls = sorted(result, key=lambda c: _PHASE_ORDER[c.phase])
        plan: list[tuple[ActionCall, RegisteredAction]] = []
        for call in calls:
            entry = self.registry.resolve(call.name)
            if entry is None:
                raise ActionNotFoundError(
                    f"action {call.name!r} is not registered", action_name=call.name
                )
            plan.append((call, entry))
        return plan

    def _failure(self, call: ActionCall, exc: Exception, attempts: int) -> ActionOutcome:
        error = ActionExecutionError(
            f"action {call.name!r} failed after {attempts} attempt(s): {type(exc).__name__}: {exc}",
            action_name=call.name,
        )
        error.__cause__ = exc
        return ActionOutcome(call=call, success=False, attempts=attempts, error=error)

    def _finish(self, outcome: ActionOutcome) -> ActionOutcome:
        if self.log_execution:
            _log_outcome(outcome)
        if not outcome.success and self.raise_on_error and outcome.error is not None:
            raise outcome.error
        return outcome

    # --- sync -------------------------------------------------------------------------------

    def execute(
        self, result: TransitionResult | Iterable[ActionCall], context: Mapping[str, Any]
    ) -> ExecutionReport:
        """Run the actions one after another; ``async`` actions run in a fresh event loop."""
        outcomes = [
            self._finish(self._run_sync(call, entry, context)) for call, entry in self._plan(result)
        ]
        return ExecutionReport(outcomes=tuple(outcomes))

    def _run_sync(
        self, call: ActionCall, entry: RegisteredAction, context: Mapping[str, Any]
    ) -> ActionOutcome:
        retry = self.policy_for(call)
        attempt = 1
        while True:
            try:
                value = entry.call(context, call.params)
                if inspect.isawaitable(value):
                    value = _run_awaitable(value, call.name, call.timeout)
                return ActionOutcome(call=call, success=True, attempts=attempt, value=value)
            except Exception as exc:  # retried, then reported or raised as ActionExecutionError
                if attempt >= retry.max_attempts:
                    return self._failure(call, exc, attempt)
                self._sleep(retry.delay_after(attempt))
                attempt += 1

    def policy_for(self, call: ActionCall) -> RetryPolicy:
        """The executor's retry policy, with the call's own ``retry``/``retry_backoff``."""
        if call.retry is None and call.retry_backoff is None:
            return self.retry
        return RetryPolicy(
            max_attempts=self.retry.max_attempts if call.retry is None else 1 + call.retry,
            backoff_seconds=(
                self.retry.backoff_seconds if call.retry_backoff is None else call.retry_backoff
            ),
            multiplier=self.retry.multiplier,
            max_backoff_seconds=max(self.retry.max_backoff_seconds, call.retry_backoff or 0.0),
        )

    # --- async ------------------------------------------------------------------------------

    async def async_execute(
        self, result: TransitionResult | Iterable[ActionCall], context: Mapping[str, Any]
    ) -> ExecutionReport:
        """Run the actions in the executor's ``default_mode``, awaiting ``async`` ones."""
        if self.default_mode is ExecutionMode.PARALLEL:
            return await self.async_execute_parallel(result, context)
        return await self.async_execute_sequential(result, context)

    async def async_execute_with_mode(
        self,
        result: TransitionResult | Iterable[ActionCall],
        context: Mapping[str, Any],
        mode: ExecutionMode,
    ) -> ExecutionReport:
        """Run the actions in ``mode``."""
        if ExecutionMode(mode) is ExecutionMode.PARALLEL:
            return await self.async_execute_parallel(result, context)
        return await self.async_execute_sequential(result, context)

    async def async_execute_phased(
        self, result: TransitionResult | Iterable[ActionCall], context: Mapping[str, Any]
    ) -> ExecutionReport:
        """Exit, then transition, then enter actions, each phase finishing before the next."""
        return await self.async_execute_sequential(result, context)

    async def async_execute_sequential(
        self, result: TransitionResult | Iterable[ActionCall], context: Mapping[str, Any]
    ) -> ExecutionReport:
        """Run the actions one after another, awaiting ``async`` ones."""
        outcomes = []
        for call, entry in self._plan(result):
            outcomes.append(self._finish(await self._run_async(call, entry, context)))
        return ExecutionReport(outcomes=tuple(outcomes))

    async def async_execute_parallel(
        self, result: TransitionResult | Iterable[ActionCall], context: Mapping[str, Any]
    ) -> ExecutionReport:
        """Run the actions of one phase concurrently, the phases in order (exit → transition →
        enter). Every action of a phase finishes before a failure of that phase is raised."""
        plan = self._plan(result)
        outcomes: list[ActionOutcome] = []
        for phase in (ActionPhase.EXIT, ActionPhase.TRANSITION, ActionPhase.ENTER):
            batch = [(c, e) for c, e in plan if c.phase is phase]
            if not batch:
                continue
            done = await asyncio.gather(*(self._run_async(c, e, context) for c, e in batch))
            outcomes.extend(done)
            for outcome in done:
                self._finish(outcome)
        return ExecutionReport(outcomes=tuple(outcomes))

    async def _run_async(
        self, call: ActionCall, entry: RegisteredAction, context: Mapping[str, Any]
    ) -> ActionOutcome:
        retry = self.policy_for(call)
        attempt = 1
        while True:
            try:
                value = entry.call(context, call.params)
                if inspect.isawaitable(value):
                    value = await _bounded(value, call.timeout)
                return ActionOutcome(call=call, success=True, attempts=attempt, value=value)
            except Exception as exc:  # retried, then reported or raised as ActionExecutionError
                if attempt >= retry.max_attempts:
                    return self._failure(call, exc, attempt)
                await self._async_sleep(retry.delay_after(attempt))
                attempt += 1


def _log_outcome(outcome: ActionOutcome) -> None:
    if outcome.success:
        ACTIONS_LOGGER.info(
            "action %s (%s) ok after %d attempt(s)",
            outcome.name,
            outcome.call.phase.value,
            outcome.attempts,
        )
    else:
        ACTIONS_LOGGER.warning(
            "action %s (%s) failed after %d attempt(s): %s",
            outcome.name,
            outcome.call.phase.value,
            outcome.attempts,
            outcome.error,
        )


#: The documented names of one action's outcome and of an execution's report.
ActionResult = ActionOutcome
ExecutionResult = ExecutionReport


def _bounded(value: Awaitable[Any], timeout: float | None) -> Awaitable[Any]:
    """``value``, limited to ``timeout`` seconds when the call has one (async actions only)."""
    if timeout is None:
        return value
    return asyncio.wait_for(value, timeout)


def _run_awaitable(value: Awaitable[Any], name: str, timeout: float | None = None) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(_bounded(value, timeout)))
    if inspect.iscoroutine(value):
        value.close()  # never awaited: close it so no "never awaited" warning escapes
    raise RuntimeError(
        f"async action {name!r} cannot run from execute() inside a running event loop; "
        "use await executor.async_execute(...)"
    )


async def _await(value: Awaitable[Any]) -> Any:
    return await value
