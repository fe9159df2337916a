"""What one worker transaction writes: collected in memory, flushed with one statement per kind.

The processor applies events with the pure step and records the results here; :meth:`Batch.flush`
then writes history rows, event completions, retries, dead letters, outbox rows and timer rows
inside the same transaction as the entity writes. Nothing here decides anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from pystator.fsm_core.records import ArmedTimer, HistoryEntry
from pystator.fsm_core.step import StepOutcome
from pystator.stores.sql import entity_queries, event_queries
from pystator.stores.sql.event_queries import EventRow, FinishedEvent, NewAction, OutboxRow

#: Event outcomes as logged and counted.
APPLIED = "applied"
REJECTED = "rejected"
STALE = "stale"
RETRY = "retry"
DEAD = "dead"


class TimerSink(Protocol):
    """Where armed and cancelled timers go (see :mod:`pystator.worker.timers`)."""

    def in_transaction(
        self,
        conn: Connection,
        arm: Sequence[ArmedTimer],
        cancel: Sequence[ArmedTimer],
        now: datetime,
    ) -> None:
        """Write timers inside the worker's transaction (durable with the state change)."""

    def after_commit(self, arm: Sequence[ArmedTimer], cancel: Sequence[ArmedTimer]) -> None:
        """Hand timers to an external scheduler once the state change is committed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventResult:
    """What became of one event in a batch (for logs, counters and tests)."""

    event: EventRow
    outcome: str  # applied | rejected | stale | retry | dead
    reason: str | None = None
    attempt: int = 1
    target_state: str | None = None
    error: Mapping[str, Any] | None = None


@dataclass(slots=True)
class Batch:
    """Everything one transaction will write, plus what to do after commit."""

    history: list[HistoryEntry] = field(default_factory=list)
    finished: list[FinishedEvent] = field(default_factory=list)
    retries: list[tuple[int, list[dict[str, Any]], datetime]] = field(default_factory=list)
    dead: list[tuple[int, list[dict[str, Any]]]] = field(default_factory=list)
    actions: list[NewAction] = field(default_factory=list)
    arm: list[ArmedTimer] = field(default_factory=list)
    cancel: list[ArmedTimer] = field(default_factory=list)
    results: list[EventResult] = field(default_factory=list)
    entities: int = 0
    action_ids: list[int] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        """Add an entity's part (built separately so a version conflict can drop it)."""
        self.history += other.history
        self.finished += other.finished
        self.retries += other.retries
        self.dead += other.dead
        self.actions += other.actions
        self.arm += other.arm
        self.cancel += other.cancel
        self.results += other.results
        self.entities += 1

    def applied(self, event: EventRow, outcome: StepOutcome) -> None:
        """Record an applied event: its history row, completion, actions and timers."""
        record = outcome.record
        assert record is not None and outcome.history is not None
        self.history.append(outcome.history)
        result = {"target_state": record.state, "version": record.version}
        self.finished.append(FinishedEvent(id=event.id, status=APPLIED_STATUS, outcome=result))
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
            )
            for call in outcome.actions
        ]
        self.arm += outcome.arm
        self.cancel += outcome.cancel
        self.results.append(
            EventResult(
                event=event,
                outcome=APPLIED,
                attempt=event.attempts + 1,
                target_state=record.state,
            )
        )

    def closed(self, event: EventRow, status: str, reason: str | None) -> None:
        """Record a business rejection or a stale timer (not retried)."""
        outcome = {"reason": reason or status}
        self.finished.append(FinishedEvent(id=event.id, status=status, outcome=outcome))
        self.results.append(
            EventResult(event=event, outcome=status, reason=reason, attempt=event.attempts + 1)
        )

    def failed(self, event: EventRow, error: dict[str, Any], retry_at: datetime | None) -> None:
        """Record a failed attempt: retried at ``retry_at``, or dead when it is None."""
        errors = [*map(dict, event.errors), error]
        if retry_at is None:
            self.dead.append((event.id, errors))
        else:
            self.retries.append((event.id, errors, retry_at))
        self.results.append(
            EventResult(
                event=event,
                outcome=DEAD if retry_at is None else RETRY,
                reason=str(error.get("error")),
                attempt=event.attempts + 1,
                error=error,
            )
        )

    def flush(
        self, conn: Connection, now: datetime, *, timers: TimerSink, outbox_lease: timedelta
    ) -> None:
        """Write everything collected (entity rows were written per entity already)."""
        entity_queries.insert_history(conn, self.history)
        event_queries.complete_events(conn, self.finished, now)
        for event_id, errors, retry_at in self.retries:
            event_queries.retry_event(conn, event_id, errors, retry_at, now)
        for event_id, errors in self.dead:
            event_queries.dead_letter(conn, event_id, errors, now)
        self.action_ids = event_queries.insert_outbox(conn, self.actions, now, lease=outbox_lease)
        if self.arm or self.cancel:
            timers.in_transaction(conn, self.arm, self.cancel, now)

    def outbox_rows(self) -> list[OutboxRow]:
        """The outbox rows this batch committed (ids from the insert), without re-reading them."""
        return [
            OutboxRow(
                id=action_id,
                event_id=a.event_id,
                machine=a.machine,
                entity_id=a.entity_id,
                entity_version=a.entity_version,
                action=a.action,
                phase=a.phase,
                params=a.params,
                context=a.context,
                attempts=0,
                errors=(),
            )
            for action_id, a in zip(self.action_ids, self.actions, strict=True)
        ]

    def count(self, outcome: str) -> int:
        """How many events of this batch had ``outcome``."""
        return sum(1 for r in self.results if r.outcome == outcome)


APPLIED_STATUS = event_queries.COMPLETED

__all__ = [
    "APPLIED",
    "DEAD",
    "REJECTED",
    "RETRY",
    "STALE",
    "Batch",
    "EventResult",
    "TimerSink",
]
