"""The one pure step shared by the Orchestrator and the worker fleet.

``(machine, entity record, event, now) → new record + history entry + actions + timers``.
Callers differ only in how they load the record and commit the outcome. The step is where a
transition's declarative effects reach the stored context (``result.context``) and where the
machine's error policy turns an invalid event into a hint or a move to the fallback state, so the
Orchestrator and the fleet cannot disagree on either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.apply_data import ApplyDataResult, routing
from pystator.fsm_core.error_policy import (
    APPLIED_FALLBACK,
    FALLBACK_STATE,
    ORIGINAL_ERROR,
    on_invalid_event,
)
from pystator.fsm_core.errors import EntityNotFoundError, describe_error
from pystator.fsm_core.records import (
    NO_VERSION,
    ArmedTimer,
    EntityRecord,
    EventInput,
    EventKind,
    HistoryEntry,
    Outcome,
)
from pystator.fsm_core.results import ActionCall, TransitionResult

if TYPE_CHECKING:
    from pystator.fsm_core.machine import StateMachine


REASON_STALE_TIMER = "stale_timer"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepOutcome:
    """Everything a caller must commit (record, history) and then carry out (timers, actions)."""

    status: Outcome  # APPLIED, REJECTED or STALE
    reason: str | None
    result: TransitionResult
    record: EntityRecord | None
    expected_version: int
    history: HistoryEntry | None
    actions: tuple[ActionCall, ...]
    arm: tuple[ArmedTimer, ...]
    cancel: tuple[ArmedTimer, ...]
    context: Mapping[str, Any]  # the merged context guards saw and actions receive
    apply_data: ApplyDataResult | None = None  # for a data update: how it was routed


def starting_record(
    machine: StateMachine, entity_id: str, record: EntityRecord | None, *, use_initial: bool
) -> EntityRecord | None:
    """The record to process from: the stored one, or a virtual initial-state record."""
    if record is not None or not use_initial:
        return record
    initial = machine.get_initial_state()
    return EntityRecord(
        machine=machine.name,
        entity_id=entity_id,
        state=initial,
        version=NO_VERSION,
        entries={initial: NO_VERSION},
    )


def is_stale_timer(record: EntityRecord, event: EventInput) -> bool:
    """True when ``event`` is a timer whose state entry no longer holds."""
    timer = event.timer
    return timer is not None and record.entries.get(timer.state) != timer.entry


def merge_context(record: EntityRecord, event: EventInput) -> dict[str, Any]:
    """The stored context with the event's payload merged over it."""
    if not event.context:
        return dict(record.context)
    return {**record.context, **event.context}


def plan(
    record: EntityRecord,
    event: EventInput,
    result: TransitionResult,
    context: Mapping[str, Any],
    now: datetime,
    *,
    machine_version: int | None = None,
    guard_context: Mapping[str, Any] | None = None,
) -> StepOutcome:
    """Turn an engine result into the outcome to commit. Pure given its inputs.

    ``machine_version`` (the registry version of the definition) and ``guard_context`` (the
    context the guards saw, for replay) are kept on the history entry.
    """
    if not result.success or result.target_state is None:
        return _unchanged(record, result, context, Outcome.REJECTED, _reason(result))
    version = record.version + 1
    entries = {s: v for s, v in record.entries.items() if s not in result.states_exited}
    for state in result.states_entered:
        entries[state] = version
    new_record = EntityRecord(
        machine=record.machine,
        entity_id=record.entity_id,
        state=result.target_state,
        context=dict(context),
        version=version,
        entries=entries,
        created_at=record.created_at or now,
        updated_at=now,
        machine_version=machine_version,
    )
    history = HistoryEntry(
        machine=record.machine,
        entity_id=record.entity_id,
        version=version,
        source_state=record.state if record.version != NO_VERSION else None,
        target_state=result.target_state,
        trigger=event.trigger,
        event_id=event.event_id,
        origin=event.origin,
        actions=result.all_actions,
        payload=dict(event.context) if event.context else None,
        created_at=now,
        machine_version=machine_version,
        guard_context=guard_context,
    )
    return StepOutcome(
        status=Outcome.APPLIED,
        reason=None,
        result=result,
        record=new_record,
        expected_version=record.version,
        history=history,
        actions=result.actions,
        arm=_armed(record, result, version, now),
        cancel=_cancelled(record, result),
        context=context,
    )


def _armed(
    record: EntityRecord, result: TransitionResult, version: int, now: datetime
) -> tuple[ArmedTimer, ...]:
    return tuple(
        ArmedTimer(
            machine=record.machine,
            entity_id=record.entity_id,
            key=spec.key,
            state=spec.state,
            entry=version,
            trigger=spec.trigger,
            due_at=now + timedelta(milliseconds=spec.delay_ms),
        )
        for spec in result.timers_to_arm
    )


def _cancelled(record: EntityRecord, result: TransitionResult) -> tuple[ArmedTimer, ...]:
    if record.version == NO_VERSION:
        return ()
    cancelled = []
    for spec in result.timers_to_cancel:
        entry = record.entries.get(spec.state)
        if entry is None:
            continue
        cancelled.append(
            ArmedTimer(
                machine=record.machine,
                entity_id=record.entity_id,
                key=spec.key,
                state=spec.state,
                entry=entry,
                trigger=spec.trigger,
            )
        )
    return tuple(cancelled)


def _reason(result: TransitionResult) -> str:
    reason = result.metadata.get("reason")
    return str(reason) if reason else "rejected"


def _unchanged(
    record: EntityRecord,
    result: TransitionResult,
    context: Mapping[str, Any],
    status: Outcome,
    reason: str,
) -> StepOutcome:
    return StepOutcome(
        status=status,
        reason=reason,
        result=result,
        record=None,
        expected_version=record.version,
        history=None,
        actions=(),
        arm=(),
        cancel=(),
        context=context,
    )


def _stale(record: EntityRecord, event: EventInput) -> StepOutcome:
    result = TransitionResult(
        success=False,
        source_state=record.state,
        target_state=None,
        trigger=event.trigger,
        metadata={"reason": REASON_STALE_TIMER},
    )
    return _unchanged(record, result, record.context, Outcome.STALE, REASON_STALE_TIMER)


def _missing(machine: StateMachine, entity_id: str, event: EventInput) -> StepOutcome:
    error = EntityNotFoundError(f"entity {entity_id!r} of machine {machine.name!r} does not exist")
    result = TransitionResult(
        success=False,
        source_state="",
        target_state=None,
        trigger=event.trigger,
        error=error,
        metadata={"reason": "entity_not_found"},
    )
    record = EntityRecord(machine=machine.name, entity_id=entity_id, state="", version=NO_VERSION)
    return _unchanged(record, result, {}, Outcome.REJECTED, "entity_not_found")


#: The one decision a step asks of its driver: ``(state, trigger, context, now)``, the arguments
#: of the machine's ``process`` (or of the awaited ``aprocess``); the answer is its result.
Decision = tuple[str, str, Mapping[str, Any], datetime | None]
#: A step in progress: yields its decisions, returns its :class:`StepOutcome`.
Stepping = Generator[Decision, TransitionResult, StepOutcome]


def stepping(
    machine: StateMachine,
    record: EntityRecord | None,
    event: EventInput,
    *,
    entity_id: str,
    now: datetime,
    use_initial_state_when_missing: bool = True,
) -> Stepping:
    """The one algorithm of :func:`apply_event` and :func:`aapply_event`: everything but how
    the transition is decided (sync or async guards), which it yields to its driver.

    A data update (``event.kind == "apply_data"``) is routed by
    :func:`~pystator.fsm_core.apply_data.routing` instead; it never creates an entity."""
    is_data = event.kind == EventKind.APPLY_DATA
    use_initial = use_initial_state_when_missing and not is_data
    start = starting_record(machine, entity_id, record, use_initial=use_initial)
    if start is None:
        return _missing(machine, entity_id, event)
    if is_data:
        routed = yield from routing(machine, start.state, start.context, event.context, now)
        return _routed(machine, start, event, routed, now)
    if is_stale_timer(start, event):
        return _stale(start, event)
    context = merge_context(start, event)
    result = yield start.state, event.trigger, context, now
    return _planned(machine, start, event, result, context, now)


def apply_event(
    machine: StateMachine,
    record: EntityRecord | None,
    event: EventInput,
    now: datetime,
    *,
    entity_id: str,
    use_initial_state_when_missing: bool = True,
) -> StepOutcome:
    """Apply one event to one entity (sync guards). Raises only for real failures."""
    steps = stepping(
        machine,
        record,
        event,
        entity_id=entity_id,
        now=now,
        use_initial_state_when_missing=use_initial_state_when_missing,
    )
    try:
        decision = next(steps)
        while True:
            decision = steps.send(machine.process(*decision))
    except StopIteration as done:
        outcome: StepOutcome = done.value
        return outcome


async def aapply_event(
    machine: StateMachine,
    record: EntityRecord | None,
    event: EventInput,
    now: datetime,
    *,
    entity_id: str,
    use_initial_state_when_missing: bool = True,
) -> StepOutcome:
    """Like :func:`apply_event`, awaiting async guards."""
    steps = stepping(
        machine,
        record,
        event,
        entity_id=entity_id,
        now=now,
        use_initial_state_when_missing=use_initial_state_when_missing,
    )
    try:
        decision = next(steps)
        while True:
            decision = steps.send(await machine.aprocess(*decision))
    except StopIteration as done:
        outcome: StepOutcome = done.value
        return outcome


def _planned(
    machine: StateMachine,
    start: EntityRecord,
    event: EventInput,
    result: TransitionResult,
    context: Mapping[str, Any],
    now: datetime,
) -> StepOutcome:
    if not result.success and machine.error_policy.active:
        result = on_invalid_event(machine, start.state, result, context, now)
    return _decided(machine, start, event, result, context, now)


def _routed(
    machine: StateMachine,
    start: EntityRecord,
    event: EventInput,
    routed: ApplyDataResult,
    now: datetime,
) -> StepOutcome:
    """A data update's outcome: always a new version (the merged context), through the taken
    transition when it moved (its trigger on the history row), else in place."""
    taken = event if routed.trigger is None else dataclasses.replace(event, trigger=routed.trigger)
    outcome = plan(
        start,
        taken,
        routed.as_transition_result(),
        routed.context,
        now,
        machine_version=machine.registry_version,
    )
    return dataclasses.replace(outcome, apply_data=routed)


def creation(
    machine: StateMachine, entity_id: str, event: EventInput, now: datetime
) -> StepOutcome:
    """A new entity entering the machine's initial configuration, with ``event.context`` as its
    context: the outcome to commit (version 1, its history row labelled ``event.trigger``, the
    entered states' timers) and then carry out (their ``on_enter`` actions), decided by the
    engine's entry (:meth:`~pystator.fsm_core.machine.StateMachine.initial_entry`) exactly as a
    transition entering that configuration decides it. A ``when`` or an effect that fails raises
    its error here, before there is anything to commit."""
    context = dict(event.context)
    result = machine.initial_entry(context, now, trigger=event.trigger)
    nothing = EntityRecord(machine=machine.name, entity_id=entity_id, state="", version=NO_VERSION)
    return _decided(machine, nothing, event, result, context, now)


def _decided(
    machine: StateMachine,
    start: EntityRecord,
    event: EventInput,
    result: TransitionResult,
    context: Mapping[str, Any],
    now: datetime,
) -> StepOutcome:
    """:func:`plan` for a result the machine decided on ``context``: the context after its
    effects is stored, ``context`` is kept as what the guards and conditions saw."""
    stored = result.context if result.context is not None else context
    return plan(
        start,
        event,
        result,
        stored,
        now,
        machine_version=machine.registry_version,
        guard_context=context,
    )


def fallback_step(
    machine: StateMachine,
    record: EntityRecord,
    event: EventInput,
    now: datetime,
    error: BaseException,
) -> StepOutcome:
    """The outcome that moves ``record`` to ``error_policy.default_fallback`` after ``error``.

    Used when :func:`~pystator.fsm_core.error_policy.decide_failure` says ``fallback``: for a
    failing guard ``record`` is the entity as loaded and ``event`` the failing event; for an
    action that failed after commit, ``record`` is the committed entity and ``event`` carries no
    payload. Commit it like any applied outcome (``expected_version=outcome.expected_version``).
    """
    context = merge_context(record, event)
    result = machine.fallback(record.state, event.trigger, context, now)
    metadata = {
        **result.metadata,
        APPLIED_FALLBACK: True,
        ORIGINAL_ERROR: describe_error(error),
        FALLBACK_STATE: machine.error_policy.default_fallback,
    }
    result = dataclasses.replace(result, metadata=metadata)
    return _decided(machine, record, event, result, context, now)
