"""The Orchestrator: load → decide → persist → schedule → act, for one event of one entity.

It differs from the worker fleet only in how it loads and commits around the one pure step
(:func:`pystator.fsm_core.step.apply_event`). Sync and async processing are one algorithm
(:meth:`Orchestrator._applying`, a generator yielding its I/O as effects: load, the pure
step's decision, save, act, pause) carried out by two small drivers: one calls, the other awaits. A version conflict reloads the entity and
recomputes (bounded, with a small jittered backoff); timers are armed/cancelled and actions run
only after the new state has committed. Hooks attached to the machine fire for every evaluation.

The machine's ``error_policy`` applies here through the same pure decisions the fleet uses
(:mod:`pystator.fsm_core.error_policy`): an invalid event is hinted or moved to the fallback state
by the step itself; a failing guard is retried ``retry_attempts`` times, and so is a failing
action (by the executor this orchestrator builds); when the last attempt fails and the mode is
``persist``, the entity is moved to ``default_fallback`` instead of the error escaping.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from pystator.fsm_core.actions import NO_RETRY, ActionExecutor, ActionRegistry, RetryPolicy
from pystator.fsm_core.apply_data import APPLY_DATA_TRIGGER, check_data
from pystator.fsm_core.backoff import Backoff
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.context import ENTITY_ID_KEY, EVENT_KEY, TransitionContext
from pystator.fsm_core.error_policy import decide_failure
from pystator.fsm_core.errors import (
    ActionExecutionError,
    ActionNotFoundError,
    ContextValidationError,
    StaleVersionError,
)
from pystator.fsm_core.hooks import TransitionObserver, entity_scope
from pystator.fsm_core.records import (
    ArmedTimer,
    EntityRecord,
    EventInput,
    EventKind,
    EventOrigin,
    Outcome,
)
from pystator.fsm_core.results import TransitionResult
from pystator.fsm_core.step import (
    Decision,
    StepOutcome,
    fallback_step,
    is_stale_timer,
    merge_context,
    starting_record,
    stepping,
)
from pystator.schedulers.base import is_scheduled_by_hand
from pystator.stores.documented import as_versioned_store

if TYPE_CHECKING:
    from pystator.fsm_core.guards import GuardRegistry
    from pystator.fsm_core.machine import StateMachine
    from pystator.schedulers.base import Scheduler

LOGGER = logging.getLogger("pystator.orchestrator")

#: ``(entity_id, current_state, trigger, context) -> (ok, errors)``; runs before any guard.
ContextValidatorFn: TypeAlias = Callable[[str, str, str, dict[str, Any]], tuple[bool, list[str]]]

DEFAULT_CONFLICT_ATTEMPTS = 10  # loads + computes of one event before StaleVersionError escapes
RETRY_BACKOFF_BASE_SECONDS = 0.002
RETRY_BACKOFF_MAX_SECONDS = 0.1
REASON_CONTEXT_VALIDATION = "context_validation"


#: Wait between a version conflict and the reload (full jitter: concurrent writers spread out).
CONFLICT_BACKOFF = Backoff(
    base_seconds=RETRY_BACKOFF_BASE_SECONDS, max_seconds=RETRY_BACKOFF_MAX_SECONDS
)


def data_event(data: Mapping[str, Any]) -> EventInput:
    """The event of a direct data update (refused unless ``data`` is a mapping)."""
    return EventInput(
        trigger=APPLY_DATA_TRIGGER, context=dict(check_data(data)), kind=EventKind.APPLY_DATA
    )


class _Load(NamedTuple):
    """Load the entity's record."""

    entity_id: str


class _Save(NamedTuple):
    """Commit the outcome with its version check."""

    outcome: StepOutcome


class _Act(NamedTuple):
    """Run the committed outcome's actions."""

    entity_id: str
    outcome: StepOutcome
    event: EventInput


class _Pause(NamedTuple):
    """Wait before the next attempt."""

    seconds: float


#: What the orchestration algorithm asks its driver to do (the only sync/async difference); a
#: plain ``Decision`` tuple is the pure step asking for the machine's decision.
_Effect: TypeAlias = _Load | _Save | _Act | _Pause | Decision
#: The algorithm in progress: yields effects, receives their answers, returns the result.
_Applying: TypeAlias = Generator[_Effect, Any, TransitionResult]


class Orchestrator:
    """Runs events against entities stored in a state store (sync or async store).

    ``state_store`` (or ``store=``) is one of our stores or any object with the documented
    ``get_state``/``set_state``/``get_context`` (or ``aget_…``) methods. ``guards``/``actions``
    are bound to the machine; ``hooks`` are added to it (each told about every evaluation, and
    about errors raised around it: a failing store or action). ``scheduler`` (optional) receives
    the ``after:``/``timeout:`` timers to arm and cancel after each commit, and fires them back
    into this orchestrator. The store is the caller's: :meth:`close` shuts the scheduler only.
    """

    def __init__(
        self,
        machine: StateMachine,
        state_store: Any = None,
        guards: GuardRegistry | None = None,
        actions: ActionRegistry | None = None,
        context_validator: ContextValidatorFn | None = None,
        scheduler: Scheduler | None = None,
        use_initial_state_when_missing: bool = True,
        *,
        store: Any = None,
        hooks: Sequence[object] = (),
        observer: TransitionObserver | None = None,
        action_executor: ActionExecutor | None = None,
        max_attempts: int = DEFAULT_CONFLICT_ATTEMPTS,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if (state_store is None) == (store is None):
            raise TypeError("give the Orchestrator exactly one of state_store= and store=")
        if guards is not None:
            machine.bind_guards(guards)
        if actions is not None:
            machine.bind_actions(actions)
        if observer is not None:
            machine.attach_observer(observer)
        for hook in hooks:
            machine.add_hook(hook)
        self.machine = machine
        self.state_store = as_versioned_store(state_store if store is None else store, machine.name)
        self.context_validator = context_validator
        self.scheduler = scheduler
        self.use_initial_state_when_missing = use_initial_state_when_missing
        self.max_attempts = max_attempts
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._is_async_store = inspect.iscoroutinefunction(getattr(self.state_store, "load", None))
        registry = actions if actions is not None else machine.action_registry
        self._actions: ActionRegistry | None = registry
        if action_executor is None and registry is not None:
            attempts = machine.error_policy.max_attempts(1)
            retry = NO_RETRY if attempts == 1 else RetryPolicy(max_attempts=attempts)
            action_executor = ActionExecutor(
                registry, retry=retry, sleep=sleep, async_sleep=async_sleep
            )
        self._executor = action_executor
        self._scheduler_started = False
        self._closed = False

    # --- public API -------------------------------------------------------------------------

    def process_event(
        self, entity_id: str, trigger: str, context: Mapping[str, Any] | None = None
    ) -> TransitionResult:
        """Apply ``trigger`` to the entity: persist the transition, then arm timers, run actions."""
        return self.process_input(entity_id, EventInput(trigger=trigger, context=context or {}))

    async def async_process_event(
        self, entity_id: str, trigger: str, context: Mapping[str, Any] | None = None
    ) -> TransitionResult:
        """Like :meth:`process_event`, awaiting async guards, actions and stores."""
        event = EventInput(trigger=trigger, context=context or {})
        return await self.async_process_input(entity_id, event)

    def apply_data(self, entity_id: str, data: Mapping[str, Any]) -> TransitionResult:
        """Merge ``data`` into the entity's context and, under ``meta.classification.auto_route``,
        move it to the state whose ``when`` rules match, through an existing transition
        (:mod:`pystator.fsm_core.apply_data`). The result is the taken transition's, or a
        no-move success; ``metadata["apply_data"]`` reports the route. The entity must exist."""
        return self.process_input(entity_id, data_event(data))

    async def async_apply_data(self, entity_id: str, data: Mapping[str, Any]) -> TransitionResult:
        """Like :meth:`apply_data`, awaiting async guards, actions and stores."""
        return await self.async_process_input(entity_id, data_event(data))

    @property
    def store(self) -> Any:
        """The state store (our versioned view of it when the caller's only has the documented
        protocol)."""
        return self.state_store

    def process_input(self, entity_id: str, event: EventInput) -> TransitionResult:
        """Apply a fully described event (origin, event id, fired timer) with a sync store."""
        if self._is_async_store:
            raise TypeError("this orchestrator has an async state store: use async_process_event")
        with entity_scope(entity_id):
            try:
                return self._process_input(entity_id, event)
            except Exception as exc:  # hooks hear of it (once), then it propagates unchanged
                self._notify_error(exc, entity_id, event)
                raise

    async def async_process_input(self, entity_id: str, event: EventInput) -> TransitionResult:
        """Apply a fully described event; the store may be sync or async."""
        with entity_scope(entity_id):
            try:
                return await self._async_process_input(entity_id, event)
            except Exception as exc:  # hooks hear of it (once), then it propagates unchanged
                self._notify_error(exc, entity_id, event)
                raise

    def _notify_error(self, exc: Exception, entity_id: str, event: EventInput) -> None:
        observer = self.machine.observer
        if observer is not None and observer.has_hooks:
            record = None
            if not self._is_async_store:
                with contextlib.suppress(Exception):  # the state is only a label for the hooks
                    record = self.state_store.load(self.machine.name, entity_id)
            state = record.state if isinstance(record, EntityRecord) else "?"
            observer.notify_error(exc, state, event.trigger, dict(event.context))

    def _process_input(self, entity_id: str, event: EventInput) -> TransitionResult:
        """Drive :meth:`_applying`, carrying out its effects with the sync store and guards."""
        steps = self._applying(entity_id, event)
        try:
            effect = next(steps)
            while True:
                try:
                    answer = self._perform(effect)
                except Exception as exc:  # thrown into the algorithm, which decides
                    effect = steps.throw(exc)
                else:
                    effect = steps.send(answer)
        except StopIteration as done:
            result: TransitionResult = done.value
            return result

    async def _async_process_input(self, entity_id: str, event: EventInput) -> TransitionResult:
        """Drive :meth:`_applying`, awaiting async stores, guards, actions and pauses."""
        steps = self._applying(entity_id, event)
        try:
            effect = next(steps)
            while True:
                try:
                    answer = await self._aperform(effect)
                except Exception as exc:  # thrown into the algorithm, which decides
                    effect = steps.throw(exc)
                else:
                    effect = steps.send(answer)
        except StopIteration as done:
            result: TransitionResult = done.value
            return result

    def _applying(self, entity_id: str, event: EventInput) -> _Applying:
        """The one algorithm of both drivers: load, validate, step, save (reloading and
        recomputing on a version conflict), schedule, act. Every I/O is yielded as an effect;
        the driver answers it or throws its error back in."""
        self._ensure_scheduler()
        last_conflict: StaleVersionError | None = None
        for attempt in range(1, self.max_attempts + 1):
            record = yield _Load(entity_id)
            rejected = self._validate(entity_id, record, event)
            if rejected is not None:
                return rejected
            outcome = yield from self._stepping(entity_id, record, event)
            if outcome.status != Outcome.APPLIED:
                return outcome.result
            self._check_actions(outcome)
            try:
                yield _Save(outcome)
            except StaleVersionError as exc:
                last_conflict = exc
                yield _Pause(CONFLICT_BACKOFF.delay(attempt + 1))
                continue
            self._schedule(outcome)
            try:
                yield _Act(entity_id, outcome, event)
            except ActionExecutionError as exc:
                moved = self._fallback_after_action(entity_id, outcome, event, exc)
                if moved is None:
                    raise
                yield _Save(moved)
                self._schedule(moved)
                yield _Act(entity_id, moved, event)
                return _committed(moved, attempt)
            return _committed(outcome, attempt)
        raise self._gave_up(entity_id, last_conflict)

    def _perform(self, effect: _Effect) -> Any:
        if isinstance(effect, _Load):
            return self.state_store.load(self.machine.name, effect.entity_id)
        if isinstance(effect, _Save):
            return self._save(effect.outcome)
        if isinstance(effect, _Act):
            return self._act(effect.entity_id, effect.outcome, effect.event)
        if isinstance(effect, _Pause):
            return self._sleep(effect.seconds)
        return self.machine.process(*effect)

    async def _aperform(self, effect: _Effect) -> Any:
        if isinstance(effect, _Load):
            return await self._aload(effect.entity_id)
        if isinstance(effect, _Save):
            return await self._asave(effect.outcome)
        if isinstance(effect, _Act):
            return await self._aact(effect.entity_id, effect.outcome, effect.event)
        if isinstance(effect, _Pause):
            return await self._async_sleep(effect.seconds)
        return await self.machine.aprocess(*effect)

    def get_record(self, entity_id: str) -> EntityRecord | None:
        """The stored record of the entity (sync store)."""
        return self.state_store.load(self.machine.name, entity_id)  # type: ignore[no-any-return]

    async def async_get_record(self, entity_id: str) -> EntityRecord | None:
        """The stored record of the entity (sync or async store)."""
        return await self._aload(entity_id)

    async def close(self) -> None:
        """Shut the scheduler down (idempotent). The state store stays open: it is the caller's."""
        if self._closed:
            return
        self._closed = True
        if self.scheduler is not None:
            await self.scheduler.aclose()

    def close_sync(self) -> None:
        """:meth:`close` for code without an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.close())
            return
        raise RuntimeError("an event loop is running: use 'await orchestrator.close()'")

    def __enter__(self) -> Orchestrator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_sync()

    async def __aenter__(self) -> Orchestrator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- the steps around the pure step -----------------------------------------------------

    def _stepping(
        self, entity_id: str, record: EntityRecord | None, event: EventInput
    ) -> Generator[_Effect, Any, StepOutcome]:
        """The pure step (its decision yielded to the driver), with the error policy's retries
        and fallback for failing guards."""
        attempt = 1
        while True:
            now = self._clock()
            try:
                return (
                    yield from stepping(
                        self.machine,
                        record,
                        event,
                        entity_id=entity_id,
                        now=now,
                        use_initial_state_when_missing=self.use_initial_state_when_missing,
                    )
                )
            except Exception as exc:  # decided by the error policy: retried, moved or re-raised
                fallback = self._after_failure(entity_id, record, event, now, exc, attempt)
                if fallback is not None:
                    return fallback
                yield _Pause(NO_RETRY.delay_after(attempt))
                attempt += 1

    def _after_failure(
        self,
        entity_id: str,
        record: EntityRecord | None,
        event: EventInput,
        now: datetime,
        exc: Exception,
        attempt: int,
    ) -> StepOutcome | None:
        """None to retry; the fallback outcome to commit; or re-raise ``exc``."""
        decision = decide_failure(self.machine.error_policy, exc, attempt, 1)
        if decision.retry:
            return None
        start = starting_record(
            self.machine, entity_id, record, use_initial=self.use_initial_state_when_missing
        )
        if decision.fallback is None or start is None:
            raise exc
        return fallback_step(self.machine, start, event, now, exc)

    def _fallback_after_action(
        self, entity_id: str, outcome: StepOutcome, event: EventInput, exc: ActionExecutionError
    ) -> StepOutcome | None:
        """After committed actions failed (their retries spent): the move to the fallback state
        under a ``persist`` policy, else None."""
        policy = self.machine.error_policy
        decision = decide_failure(policy, exc, policy.max_attempts(1), 1)
        if decision.fallback is None or outcome.record is None:
            return None
        follow_up = EventInput(trigger=event.trigger, origin=event.origin, event_id=event.event_id)
        return fallback_step(self.machine, outcome.record, follow_up, self._clock(), exc)

    def _action_context(
        self, entity_id: str, outcome: StepOutcome, event: EventInput
    ) -> TransitionContext:
        context = TransitionContext(outcome.context)
        context[ENTITY_ID_KEY] = entity_id
        context[EVENT_KEY] = event  # the documented ``_event``: trigger + payload of this event
        return context

    def _act(self, entity_id: str, outcome: StepOutcome, event: EventInput) -> None:
        if self._executor is not None and outcome.actions:
            context = self._action_context(entity_id, outcome, event)
            self._executor.execute(outcome.actions, context)

    async def _aact(self, entity_id: str, outcome: StepOutcome, event: EventInput) -> None:
        if self._executor is not None and outcome.actions:
            await self._executor.async_execute(
                outcome.actions, self._action_context(entity_id, outcome, event)
            )

    def _validate(
        self, entity_id: str, record: EntityRecord | None, event: EventInput
    ) -> TransitionResult | None:
        """Run the context validator (before any guard); a rejection result, or None."""
        if self.context_validator is None:
            return None
        start = starting_record(
            self.machine, entity_id, record, use_initial=self.use_initial_state_when_missing
        )
        if start is None or is_stale_timer(start, event):
            return None  # the step reports these outcomes itself
        context = merge_context(start, event)
        ok, errors = self.context_validator(entity_id, start.state, event.trigger, context)
        if ok:
            return None
        messages = [str(e) for e in errors]
        error = ContextValidationError(
            f"context validation failed for {event.trigger!r} in {start.state!r}: "
            + ("; ".join(messages) or "rejected"),
            errors=messages,
        )
        return TransitionResult(
            success=False,
            source_state=start.state,
            target_state=None,
            trigger=event.trigger,
            error=error,
            metadata={"reason": REASON_CONTEXT_VALIDATION, "errors": messages},
        )

    def _check_actions(self, outcome: StepOutcome) -> None:
        """Refuse to commit a transition whose actions could never run."""
        if self._actions is None:
            return
        for call in outcome.actions:
            if call.name not in self._actions:
                raise ActionNotFoundError(
                    f"action {call.name!r} is not registered", action_name=call.name
                )

    def _save(self, outcome: StepOutcome) -> None:
        self.state_store.save(
            outcome.record, expected_version=outcome.expected_version, history=outcome.history
        )

    async def _asave(self, outcome: StepOutcome) -> None:
        saved = self.state_store.save(
            outcome.record, expected_version=outcome.expected_version, history=outcome.history
        )
        if self._is_async_store:
            await saved

    async def _aload(self, entity_id: str) -> EntityRecord | None:
        loaded = self.state_store.load(self.machine.name, entity_id)
        if self._is_async_store:
            loaded = await loaded
        return loaded  # type: ignore[no-any-return]

    def _schedule(self, outcome: StepOutcome) -> None:
        """After commit: cancel the exited states' timers, arm the entered states' timers."""
        if self.scheduler is None:
            if outcome.arm:
                LOGGER.warning(
                    "transition of %s/%s arms %d timer(s) but the orchestrator has no scheduler",
                    self.machine.name,
                    outcome.record.entity_id if outcome.record else "?",
                    len(outcome.arm),
                )
            return
        if outcome.cancel:
            self.scheduler.cancel(outcome.cancel)
        if outcome.arm:
            self.scheduler.arm(outcome.arm)

    def _ensure_scheduler(self) -> None:
        if self.scheduler is None or self._scheduler_started:
            return
        fire = self._afire if self._is_async_store else self._fire
        self.scheduler.start(fire)
        self._scheduler_started = True

    def _fire(self, timer: ArmedTimer) -> None:
        self.process_input(timer.entity_id, _timer_event(timer))

    async def _afire(self, timer: ArmedTimer) -> None:
        await self.async_process_input(timer.entity_id, _timer_event(timer))

    def _gave_up(self, entity_id: str, conflict: StaleVersionError | None) -> StaleVersionError:
        error = StaleVersionError(
            f"entity {entity_id!r} of machine {self.machine.name!r}: still conflicting after "
            f"{self.max_attempts} attempts",
            entity_id=entity_id,
            expected_version=conflict.expected_version if conflict else None,
            actual_version=conflict.actual_version if conflict else None,
        )
        error.__cause__ = conflict
        return error


def _timer_event(timer: ArmedTimer) -> EventInput:
    if is_scheduled_by_hand(timer):  # scheduler.schedule(…): not tied to a state entry
        return EventInput(trigger=timer.trigger, origin=EventOrigin.TIMER)
    return EventInput(trigger=timer.trigger, origin=EventOrigin.TIMER, timer=timer.ref)


def _committed(outcome: StepOutcome, attempts: int) -> TransitionResult:
    """The engine's result, with the committed version and the attempts it took."""
    version = outcome.record.version if outcome.record else None
    metadata = {**outcome.result.metadata, "entity_version": version, "attempts": attempts}
    return dataclasses.replace(outcome.result, metadata=metadata)


__all__ = [
    "CONFLICT_BACKOFF",
    "DEFAULT_CONFLICT_ATTEMPTS",
    "ContextValidatorFn",
    "Orchestrator",
]
