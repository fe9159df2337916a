"""The apply loop: claim entities, apply their due events in order, commit everything at once.

One transaction per batch of entities. For each claimed entity (held under a per-entity lock:
a PostgreSQL advisory lock, or SQLite's single writer) the processor loads the record, runs its
due events through the pure :func:`~pystator.fsm_core.step.apply_event` one after another in memory,
and writes the entity once with a version check. History rows, event completions, retries, dead
letters, outbox rows and timer rows of the whole batch follow in one statement each, then commit.

A failing event (a guard raising, an unknown machine) never touches the database: the step is pure,
so the failure is recorded as a retry (later events of that entity wait behind it) or, after its
last attempt, as a dead letter (later events proceed). A version conflict (someone else wrote the
entity) drops that entity's plan, reloads and recomputes; it never overwrites.

Queue mode's carried events (no ``worker_events`` row) go through the same batch, flush and
after-commit path (:meth:`Processor.apply_carried`): there is one commit path.

**The nudge race.** A worker that cannot take an entity's lock returns at once; the lock holder
re-checks for due events *after* committing (when its lock is gone) and goes round again, so an
event committed while the holder was busy is never left behind. The relay is the safety net.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine

from pystator.config import tracing
from pystator.config.logs import get_logger
from pystator.config.settings import (
    DEFAULT_BATCH_ENTITIES,
    DEFAULT_BATCH_EVENTS_PER_ENTITY,
    DEFAULT_BATCH_MAX_BYTES,
    DEFAULT_MAX_ENTITY_CONTEXT_BYTES,
    DEFAULT_RETRY_BASE_SECONDS,
    DEFAULT_RETRY_MAX_SECONDS,
)
from pystator.fleet.batch import Batch, EventRef
from pystator.fleet.observer import FleetObserver
from pystator.fleet.shadow import ShadowBook
from pystator.fleet.staleness import NudgeCounts, SettledWatermark
from pystator.fleet.stored_events import event_input, event_ref, span_attributes
from pystator.fleet.version_checks import behind, mismatch
from pystator.fsm_core.backoff import Backoff, RandomSource
from pystator.fsm_core.clock import Clock
from pystator.fsm_core.error_policy import decide_failure
from pystator.fsm_core.errors import (
    ActionExecutionError,
    ConfigurationError,
    EntityBusyError,
    InvalidStateError,
    StaleVersionError,
    StoreError,
    StoreUnavailableError,
    describe_error,
)
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.records import (
    NO_VERSION,
    EntityKey,
    EntityRecord,
    EventInput,
    EventOrigin,
    Outcome,
)
from pystator.fsm_core.step import StepOutcome, apply_event, fallback_step, starting_record
from pystator.registry.machines import MachineRegistry
from pystator.schedulers.fleet_timers import DbTimerSink, TimerSink
from pystator.stores.sql import entity_queries, event_queries
from pystator.stores.sql.connections import autocommit, transaction
from pystator.stores.sql.db_clock import bind_now, read_now
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.locking import lock_entities_at, lock_entity
from pystator.stores.sql.rows import EventRow, OutboxRow

#: How long a batch's actions are leased to it when no outbox runner says (the runner's lease
#: covers twice its action timeout).
DEFAULT_OUTBOX_LEASE_SECONDS = 30.0
#: Reload-and-recompute attempts after a version conflict before leaving the entity for later.
MAX_CONFLICT_RETRIES = 3
#: Rounds one ``process_entities`` call may run (each round commits) before leaving the rest
#: to the next nudge or the relay.
MAX_ENTITY_ROUNDS = 20
#: The smallest step of a stored time (a retry is kept strictly after its event's submission).
_TICK = timedelta(microseconds=1)
#: Trigger recorded for the move to an ``error_policy`` fallback after a dead action.
FAILED_ACTION_TRIGGER = "action_failed"
#: Rejection reason of an event whose payload would grow the entity's context past its cap.
REASON_CONTEXT_TOO_LARGE = "context_too_large"

log = get_logger("pystator.worker")

AfterCommit = Callable[[Batch], None]
#: ``(conn, now to bind) -> (keys now locked, the fleet's time the statement decided with)``.
Claim = Callable[[Connection, datetime | None], tuple[list[EntityKey], datetime | None]]


def default_retry() -> Backoff:
    """The events' retry backoff with the documented defaults."""
    return Backoff(base_seconds=DEFAULT_RETRY_BASE_SECONDS, max_seconds=DEFAULT_RETRY_MAX_SECONDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessorOptions:
    """Tuning knobs of the apply loop."""

    batch_entities: int = DEFAULT_BATCH_ENTITIES
    events_per_entity: int = DEFAULT_BATCH_EVENTS_PER_ENTITY
    outbox_lease: timedelta = timedelta(seconds=DEFAULT_OUTBOX_LEASE_SECONDS)
    retry: Backoff = field(default_factory=default_retry)
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    max_entity_context_bytes: int = DEFAULT_MAX_ENTITY_CONTEXT_BYTES


class _BatchFailed(Exception):
    """A batch transaction failed for a reason other than an outage (see ``Processor._run``)."""

    def __init__(self, keys: Sequence[EntityKey], error: StoreError) -> None:
        super().__init__(str(error))
        self.keys = list(keys)
        self.error = error


class Processor:
    """Applies due events from ``worker_events`` to entity state (thread-safe, no shared state)."""

    def __init__(
        self,
        engine: Engine,
        machines: MachineRegistry,
        *,
        options: ProcessorOptions | None = None,
        timers: TimerSink | None = None,
        after_commit: Sequence[AfterCommit] = (),
        clock: Clock | None = None,
        rand: RandomSource = random.random,
    ) -> None:
        """``clock`` None: the database's clock decides what is due and stamps the rows
        (:mod:`pystator.stores.sql.db_clock`); a clock given stands in for it (tests)."""
        self.engine = engine
        self.machines = machines
        self.options = options or ProcessorOptions()
        self.timers: TimerSink = timers or DbTimerSink()
        self.after_commit = list(after_commit)
        self.clock = clock
        self.rand = rand
        self.nudges = NudgeCounts()
        self.settled = SettledWatermark(engine, clock=clock, counts=self.nudges)
        self.observer: FleetObserver = FleetObserver()
        #: shadow mode: candidates compared beside the active machines (None: not evaluated)
        self.shadows: ShadowBook | None = None

    # --- entry points ------------------------------------------------------------------------

    def drain_once(self, limit: int | None = None) -> Batch:
        """Claim up to ``limit`` entities with due events, apply them, commit. Empty when idle."""
        size = limit or self.options.batch_entities
        return self._run(lambda conn, now: event_queries.claim_entities(conn, now, size))

    def drain(self, *, max_batches: int | None = None, through: int | None = None) -> int:
        """Run batches until nothing is due; returns the number of events handled. A drain
        nudge whose events are all known settled (``through``) is dropped."""
        if self._settled_nudge(through, arrived_at=time.monotonic()):
            return 0
        handled = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            batch = self.drain_once()
            batches += 1
            if not batch.entities:
                if batches == 1 and through is not None:  # a producer's drain nudge, stale
                    self._stale_nudge()
                break
            handled += len(batch.results)
        return handled

    def process_entity(self, machine: str, entity_id: str, through: int | None = None) -> int:
        """Apply one entity's due events (a nudge); returns how many events were handled.

        Returns at once when another worker holds the entity: that worker re-checks after its
        commit. After each commit this call re-checks too, so nothing submitted meanwhile waits.
        """
        return self.process_entities([(machine, entity_id)], through=through)

    def process_entities(self, keys: Sequence[EntityKey], *, through: int | None = None) -> int:
        """:meth:`process_entity` for several entities, in shared transactions (round after
        round, each committing, while any of them still has due events).

        A stale nudge costs no transaction: while stale nudges are arriving it is dropped when a
        watermark read after it arrived shows its events settled (``through``, see
        :mod:`pystator.fleet.staleness`), else after one read finds none of its entities due.
        Entities another worker holds are skipped (their holder re-checks after its commit).
        """
        if self._settled_nudge(through, arrived_at=time.monotonic()):
            return 0
        remaining = self.due_among(list(dict.fromkeys(keys)))
        if not remaining:
            self._stale_nudge()
            return 0
        self.observer.nudge_handled("applied")
        handled = 0
        for _round in range(MAX_ENTITY_ROUNDS):
            batch = self._run(functools.partial(self._lock_many, keys=remaining))
            self.nudges.add(transactions=1)
            handled += len(batch.results)
            if not batch.entities:
                break
            remaining = self.due_among(remaining)
            if not remaining:
                break
        return handled

    def apply_listed(self, keys: Sequence[EntityKey]) -> Batch:
        """One transaction of :meth:`process_entities` over entities already known to have due
        work (a starting worker's list of its backlog, :mod:`pystator.fleet.startup`): lock
        those no one holds, apply their due events in order, commit. No nudge bookkeeping and
        no read first: an entity another worker finished meanwhile costs its lock only."""
        return self._run(functools.partial(self._lock_many, keys=keys))

    def due_among(self, keys: Sequence[EntityKey]) -> list[EntityKey]:
        """Which of ``keys`` have a due oldest pending event (one read, no lock)."""
        with translate_errors("worker events"), autocommit(self.engine) as conn:
            return event_queries.due_among(conn, keys, bind_now(conn, self.clock))

    def _stale_nudge(self) -> None:
        """Count a nudge that found nothing due."""
        self.nudges.add(stale=1)
        self.observer.nudge_handled("stale")
        self.settled.saw_stale()  # stale nudges are arriving: the watermark pays off

    def _settled_nudge(self, through: int | None, *, arrived_at: float) -> bool:
        self.nudges.add(received=1)
        if self.settled.in_use and self.settled.covers(through, arrived_at=arrived_at):
            self.nudges.add(dropped=1)
            self.observer.nudge_handled("dropped")
            return True
        return False

    def apply_carried(self, machine_name: str, entity_id: str, event: EventInput) -> Outcome:
        """Queue mode: apply one event carried by a broker message (it has no stored row).

        Same lock, step, flush and after-commit path as stored events. Raises
        :class:`EntityBusyError` when another worker holds the entity, :class:`StaleVersionError`
        on a concurrent write, and whatever a guard raised: the caller's message is retried.
        """
        current = self.machines.get(machine_name)

        def step(stored: EntityRecord | None, now: datetime) -> StepOutcome:
            machine = self.machine_for(machine_name, stored) or current
            try:
                behind(machine, stored)
                return apply_event(machine, stored, event, now, entity_id=entity_id)
            except InvalidStateError as exc:
                raise mismatch(machine, stored, exc) from exc  # logged with the reason
            except Exception as exc:
                decision = decide_failure(machine.error_policy, exc, 1, 1)
                if decision.fallback is None:
                    raise  # the message is retried, then logged dead
                start = starting_record(machine, entity_id, stored, use_initial=True)
                assert start is not None
                return fallback_step(machine, start, event, now, exc)

        return self._apply_one(machine_name, entity_id, event, step, what="queue mode")

    def after_dead_action(self, row: OutboxRow, error: Exception) -> Outcome | None:
        """An action failed its last attempt: if the machine's ``error_policy`` persists
        failures into its fallback state, move the entity there now (one transaction, like any
        event). Returns the outcome, or None when the policy does not ask for it."""
        machine = self.machines.find(row.machine)
        if machine is None:
            return None
        failure = ActionExecutionError(str(error), action_name=row.action)
        attempt = row.attempts + 1
        if decide_failure(machine.error_policy, failure, attempt, attempt).fallback is None:
            return None
        event = EventInput(
            trigger=f"{FAILED_ACTION_TRIGGER}:{row.action}",
            origin=EventOrigin.EVENT,
            event_id=row.event_id,
        )

        def step(stored: EntityRecord | None, now: datetime) -> StepOutcome:
            start = starting_record(machine, row.entity_id, stored, use_initial=True)
            assert start is not None
            return fallback_step(machine, start, event, now, failure)

        return self._apply_one(row.machine, row.entity_id, event, step, what="error policy")

    def _apply_one(
        self,
        machine_name: str,
        entity_id: str,
        event: EventInput,
        step: Callable[[EntityRecord | None, datetime], StepOutcome],
        *,
        what: str,
    ) -> Outcome:
        """One entity, one step, the same lock, flush and after-commit path as a batch."""
        ref = EventRef(id=None, machine=machine_name, entity_id=entity_id, trigger=event.trigger)
        batch = Batch()
        with translate_errors(what), transaction(self.engine) as conn:
            locked, at = lock_entities_at(
                conn, [(machine_name, entity_id)], bind_now(conn, self.clock)
            )
            if not locked or at is None:
                raise EntityBusyError(f"{machine_name}/{entity_id} is locked by another worker")
            now = at
            stored = entity_queries.load_record(conn, machine_name, entity_id)
            outcome = step(stored, now)
            if outcome.status == Outcome.APPLIED and outcome.record is not None:
                expected = stored.version if stored is not None else NO_VERSION
                entity_queries.save_record(conn, outcome.record, expected_version=expected)
                batch.applied(ref, outcome)
            else:
                batch.closed(ref, outcome.status, outcome.reason)
            batch.entities = 1
            self._flush(conn, batch, now)
        self._after(batch)
        return outcome.status

    # --- one transaction ---------------------------------------------------------------------

    @staticmethod
    def _lock_many(
        conn: Connection, now: datetime | None, *, keys: Sequence[EntityKey]
    ) -> tuple[list[EntityKey], datetime | None]:
        return lock_entities_at(conn, keys, now)

    def _run(self, claim: Claim) -> Batch:
        """One batch; if its transaction fails for anything but an outage, its entities are
        run again one by one, so the failure is charged to the entity that causes it alone."""
        try:
            return self._run_once(claim)
        except _BatchFailed as failed:
            return self._isolate(failed.keys, failed.error)

    def _run_once(self, claim: Claim) -> Batch:
        batch = Batch()
        keys: list[EntityKey] = []
        if self.shadows is not None:
            self.shadows.refresh()  # outside the transaction: at most one read per interval
        try:
            with translate_errors("worker"), transaction(self.engine) as conn:
                keys, at = claim(conn, bind_now(conn, self.clock))
                if not keys or at is None:
                    return batch
                now = at  # the fleet's time the claim decided with: every stamp uses it
                pending = event_queries.pending_events(
                    conn,
                    keys,
                    now,
                    limit=self.options.events_per_entity,
                    max_bytes=self.options.batch_max_bytes,
                )
                records = entity_queries.load_records(conn, [k for k in keys if k in pending])
                for key in keys:
                    events = pending.get(key)
                    if events:
                        part = self._apply_entity(conn, key, events, now, records.get(key))
                        batch.extend(part)
                self._flush(conn, batch, now)
        except StoreUnavailableError as exc:
            batch.end_spans(f"not committed: {exc}")
            raise  # an outage: nothing to isolate; the events stay pending
        except StoreError as exc:
            batch.end_spans(f"not committed: {exc}")
            if not keys:
                raise
            raise _BatchFailed(keys, exc) from exc
        self._after(batch)
        return batch

    def _isolate(self, keys: Sequence[EntityKey], error: StoreError) -> Batch:
        if len(keys) == 1:
            return self._charge(keys[0], error)
        total = Batch()
        for key in keys:
            try:
                part = self._run_once(functools.partial(self._lock_many, keys=[key]))
            except _BatchFailed as failed:
                part = self._charge(key, failed.error)
            total.extend(part)
        return total

    def _charge(self, key: EntityKey, error: StoreError) -> Batch:
        """The entity's own transaction failed: count an attempt against its oldest pending
        event (retried with backoff, dead at its last attempt), in a transaction of its own."""
        part = Batch()
        try:
            with translate_errors("worker"), transaction(self.engine) as conn:
                if not lock_entity(conn, *key):
                    return part  # someone else holds it now: they will meet the failure
                now = read_now(conn, self.clock)
                head = event_queries.pending_events(conn, [key], now, limit=1).get(key)
                if not head:
                    return part
                self._fail(part, head[0], error, now)
                event_queries.fail_events(conn, part.failed, now)
        except StoreError as again:  # not even that: the entity waits for the next attempt
            log.error("entity_failure_not_recorded", entity=list(key), error=str(again))
            return Batch()
        part.entities = 1
        self._after(part)
        return part

    def _flush(self, conn: Connection, batch: Batch, now: datetime) -> None:
        batch.flush(conn, now, timers=self.timers, outbox_lease=self.options.outbox_lease)

    def _after(self, batch: Batch) -> None:
        batch.end_spans()
        if self.shadows is not None and batch.shadow:
            self.shadows.add(batch.shadow)
        if batch.arm or batch.cancel:
            self.timers.after_commit(batch.arm, batch.cancel)
        for hook in self.after_commit:
            hook(batch)

    def _apply_entity(
        self,
        conn: Connection,
        key: EntityKey,
        events: list[EventRow],
        now: datetime,
        stored: EntityRecord | None,
    ) -> Batch:
        machine_name, entity_id = key
        for attempt in range(MAX_CONFLICT_RETRIES):
            if attempt:
                stored = entity_queries.load_record(conn, machine_name, entity_id)
            part, final = self._plan_entity(key, stored, events, now)
            try:
                if final is not stored and final is not None:
                    expected = stored.version if stored is not None else NO_VERSION
                    entity_queries.save_record(conn, final, expected_version=expected)
            except StaleVersionError:
                part.end_spans("version conflict: recomputed")
                continue  # someone else wrote it: reload and recompute
            return part
        return Batch()  # still conflicting: leave the events pending for a later round

    def _plan_entity(
        self,
        key: EntityKey,
        stored: EntityRecord | None,
        events: list[EventRow],
        now: datetime,
    ) -> tuple[Batch, EntityRecord | None]:
        part = Batch()
        current = stored
        machine = self.machine_for(key[0], stored)
        shadows = self.shadows if self.shadows is not None and self.shadows.active(key[0]) else None
        for event in events:
            span = tracing.start_apply(event.traceparent, span_attributes(event))
            trace = tracing.traceparent_of(span)
            given = event_input(event)
            try:
                if machine is None:
                    raise ConfigurationError(f"this worker has no machine named {key[0]!r}")
                behind(machine, current)
                outcome = apply_event(machine, current, given, now, entity_id=key[1])
            except InvalidStateError as exc:  # the definition cannot apply: dead at once
                part.spans.append((span, f"{type(exc).__name__}: {exc}"))
                self._fail(part, event, mismatch(machine, current, exc), now, machine)
                continue
            except Exception as exc:  # a guard or the engine failed: retry, fall back, or dead
                part.spans.append((span, f"{type(exc).__name__}: {exc}"))
                fallback = self._fallback(machine, key, current, event, exc, now)
                if fallback is not None:
                    current = fallback.record
                    part.applied(event_ref(event), fallback, trace=trace)
                    continue
                if self._fail(part, event, exc, now, machine):
                    break  # per-entity order: later events wait behind the retry
                continue
            part.spans.append((span, None))
            if shadows is not None:  # the same input, compared only: it never acts
                compared = shadows.compare(key[0], current, given, now, outcome, entity_id=key[1])
                if compared is not None:
                    part.shadow.append(compared)
            if outcome.status == Outcome.APPLIED and self._too_large(event, outcome):
                part.closed(event_ref(event), Outcome.REJECTED, REASON_CONTEXT_TOO_LARGE)
            elif outcome.status == Outcome.APPLIED:
                current = outcome.record
                part.applied(event_ref(event), outcome, trace=trace)
            else:
                part.closed(event_ref(event), outcome.status, outcome.reason)
        return part, current

    def machine_for(self, name: str, stored: EntityRecord | None) -> StateMachine | None:
        """The definition an entity's events apply with: the current version, or, when the
        machine is pinned, the version the entity is on (if this process has it)."""
        machine = self.machines.find(name)
        version = stored.machine_version if stored is not None else None
        if machine is None or version is None or version == machine.registry_version:
            return machine
        pinned = self.machines.pinned(name, version)
        return pinned if pinned is not None else machine

    def _too_large(self, event: EventRow, outcome: StepOutcome) -> bool:
        """True when the event made the entity's context exceed its cap (only a payload or a
        transition's effects can grow it)."""
        if not event.context and outcome.result.context is None:
            return False
        encoded = json.dumps(outcome.context, separators=(",", ":"), default=str)
        return len(encoded.encode("utf-8")) > self.options.max_entity_context_bytes

    def _fallback(
        self,
        machine: StateMachine | None,
        key: EntityKey,
        current: EntityRecord | None,
        event: EventRow,
        exc: Exception,
        now: datetime,
    ) -> StepOutcome | None:
        """The ``error_policy`` fallback for an event whose last attempt failed, if any."""
        if machine is None:
            return None
        decision = decide_failure(machine.error_policy, exc, event.attempts + 1, event.max_attempts)
        if decision.fallback is None:
            return None
        start = starting_record(machine, key[1], current, use_initial=True)
        assert start is not None
        return fallback_step(machine, start, event_input(event), now, exc)

    def _fail(
        self,
        part: Batch,
        event: EventRow,
        exc: Exception,
        now: datetime,
        machine: StateMachine | None = None,
    ) -> bool:
        """Record a failed attempt; True when the event will be retried (so it blocks). The
        machine's ``error_policy`` may allow more (or fewer) attempts than the event's own."""
        attempt = event.attempts + 1
        errors = [*map(dict, event.errors), describe_error(exc, attempt=attempt, at=now)]
        if machine is not None:
            retry = decide_failure(machine.error_policy, exc, attempt, event.max_attempts).retry
        else:
            retry = attempt < event.max_attempts
        if not retry:
            part.failed_attempt(event_ref(event), errors, None)
            return False
        # Strictly after its submission: a retry waits for the reader's clock, whatever the
        # submitter's clock said (see event_queries: an event stamped due at submission is due).
        retry_at = max(
            self.options.retry.next_time(attempt, now, self.rand), event.created_at + _TICK
        )
        part.failed_attempt(event_ref(event), errors, retry_at)
        return True


__all__ = ["Processor", "ProcessorOptions", "default_retry"]
