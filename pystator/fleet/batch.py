"""What one worker transaction writes: collected in memory, flushed with one statement per kind.

The processor applies events with the pure step and records the results here; :meth:`Batch.flush`
then writes history rows, event completions, retries, dead letters, outbox rows and timer rows
inside the same transaction as the entity writes. Nothing here decides anything.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pystator.config import tracing
from pystator.fleet.shadow import ShadowResult
from pystator.fsm_core.records import ArmedTimer, EventStatus, HistoryEntry, Outcome
from pystator.fsm_core.step import StepOutcome
from pystator.schedulers.fleet_timers import TimerSink
from pystator.stores.sql import event_queries, history_queries, outbox_queries
from pystator.stores.sql.rows import FailedEvent, FinishedEvent, NewAction, OutboxRow


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRef:
    """The event an attempt was about (``id`` is None for queue mode's carried events)."""

    id: int | None
    machine: str
    entity_id: str
    trigger: str
    attempts: int = 0  # attempts made before this one
    due_at: datetime | None = None  # when it became due (its fires_at): apply latency from here


@dataclass(frozen=True, slots=True, kw_only=True)
class EventResult:
    """What became of one event in a batch (for logs, counters and tests)."""

    event: EventRef
    outcome: Outcome
    reason: str | None = None
    target_state: str | None = None
    error: Mapping[str, Any] | None = None

    @property
    def attempt(self) -> int:
        """This attempt's number (1-based)."""
        return self.event.attempts + 1


@dataclass(slots=True)
class Batch:
    """Everything one transaction will write, plus what to do after commit."""

    history: list[HistoryEntry] = field(default_factory=list)
    finished: list[FinishedEvent] = field(default_factory=list)
    failed: list[FailedEvent] = field(default_factory=list)
    actions: list[NewAction] = field(default_factory=list)
    arm: list[ArmedTimer] = field(default_factory=list)
    cancel: list[ArmedTimer] = field(default_factory=list)
    results: list[EventResult] = field(default_factory=list)
    entities: int = 0
    action_ids: list[int] = field(default_factory=list)
    lease_until: datetime | None = None  # when the committed outbox rows become claimable
    # the same moment on this process's monotonic clock (what the outbox runner counts with)
    lease_deadline: float | None = None
    # tracing: (apply span, error) of each event, ended after commit (config.tracing)
    spans: list[tuple[Any, str | None]] = field(default_factory=list)
    # shadow mode: the candidate's decisions compared with the active ones (never written here)
    shadow: list[ShadowResult] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        """Add an entity's part (built separately so a version conflict can drop it)."""
        self.spans += other.spans
        self.history += other.history
        self.finished += other.finished
        self.failed += other.failed
        self.actions += other.actions
        self.arm += other.arm
        self.cancel += other.cancel
        self.results += other.results
        self.shadow += other.shadow
        self.entities += 1

    def end_spans(self, error: str | None = None) -> None:
        """End the apply spans (``error``: the transaction did not commit)."""
        spans, self.spans = self.spans, []
        for span, failed in spans:
            tracing.end_span(span, error=error or failed)

    def applied(self, event: EventRef, outcome: StepOutcome, *, trace: str | None = None) -> None:
        """Record an applied event: its history row, completion, actions and timers (``trace``:
        the apply span's context, stored with its actions and timers)."""
        record = outcome.record
        assert record is not None and outcome.history is not None
        self.history.append(outcome.history)
        if event.id is not None:
            result = {"target_state": record.state, "version": record.version}
            if outcome.history.machine_version is not None:
                result["machine_version"] = outcome.history.machine_version
            if outcome.apply_data is not None:  # a data update: how it was routed
                result["apply_data"] = outcome.apply_data.report()
            self.finished.append(
                FinishedEvent(id=event.id, status=EventStatus.COMPLETED, outcome=result)
            )
        self.actions += [
            NewAction(
                event_id=event.id,
                machine=record.machine,
                entity_id=record.entity_id,
                entity_version=record.version,
                action=call.name,
                phase=call.phase.value,
                params=dict(call.params),
                context=dict(outcome.context),
                traceparent=trace,
            )
            for call in outcome.actions
        ]
        self.arm += [replace(t, trace=trace) for t in outcome.arm] if trace else outcome.arm
        self.cancel += outcome.cancel
        self.results.append(
            EventResult(event=event, outcome=Outcome.APPLIED, target_state=record.state)
        )

    def closed(self, event: EventRef, outcome: Outcome, reason: str | None) -> None:
        """Record a business rejection or a stale timer (not retried)."""
        if event.id is not None:
            self.finished.append(
                FinishedEvent(
                    id=event.id,
                    status=EventStatus.after(outcome),
                    outcome={"reason": reason or outcome.value},
                )
            )
        self.results.append(EventResult(event=event, outcome=outcome, reason=reason))

    def failed_attempt(
        self,
        event: EventRef,
        errors: list[dict[str, Any]],
        retry_at: datetime | None,
    ) -> None:
        """Record a failed attempt (``errors``: every attempt's, this one last): retried at
        ``retry_at``, or dead when it is None."""
        if event.id is not None:
            self.failed.append(FailedEvent(id=event.id, errors=errors, retry_at=retry_at))
        error = errors[-1]
        self.results.append(
            EventResult(
                event=event,
                outcome=Outcome.DEAD if retry_at is None else Outcome.RETRY,
                reason=str(error.get("error")),
                error=error,
            )
        )

    def flush(
        self, conn: Connection, now: datetime, *, timers: TimerSink, outbox_lease: timedelta
    ) -> None:
        """Write everything collected (entity rows were written per entity already)."""
        history_queries.insert_history(conn, self.history)
        event_queries.complete_events(conn, self.finished, now)
        event_queries.fail_events(conn, self.failed, now)
        self.action_ids = outbox_queries.insert_outbox(conn, self.actions, now, lease=outbox_lease)
        self.lease_until = now + outbox_lease
        self.lease_deadline = time.monotonic() + outbox_lease.total_seconds()
        if self.arm or self.cancel:
            timers.in_transaction(conn, self.arm, self.cancel, now)

    def outbox_rows(self) -> list[OutboxRow]:
        """The outbox rows this batch committed (ids from the insert), without re-reading them."""
        return [
            OutboxRow.committed(action_id, action)
            for action_id, action in zip(self.action_ids, self.actions, strict=True)
        ]

    def count(self, outcome: Outcome) -> int:
        """How many events of this batch had ``outcome``."""
        return sum(1 for r in self.results if r.outcome == outcome)


__all__ = ["Batch", "EventRef", "EventResult"]
