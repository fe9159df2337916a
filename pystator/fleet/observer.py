"""Hooks on the fleet's life: logs and metrics plug in here, not into the worker's code.

A :class:`FleetObserver` receives what the fleet did: a batch committed (with every event's
outcome), nudges sent or failed, an outbox action's result, timers fired, the relay's
re-publishing, the worker's heartbeat. Every method is a no-op in the base class, so an observer
overrides only what it needs. :class:`Observers` fans out to several; one that raises is logged
loudly (with its traceback) and the others, and the fleet, carry on. :class:`LoggingObserver`
(structured logs) is attached by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pystator.config.logs import get_logger
from pystator.fleet.batch import Batch, EventResult
from pystator.fsm_core.records import ArmedTimer, Outcome
from pystator.schedulers.fleet_timers import lateness_ms
from pystator.stores.sql.rows import OutboxRow

log = get_logger("pystator.worker")


class FleetObserver:
    """Fleet hooks; override any of them (they run on the worker's threads: keep them quick)."""

    def batch_committed(self, batch: Batch) -> None:
        """A transaction committed ``batch`` (``batch.results``: every event's outcome)."""

    def nudges_sent(self, messages: int, entities: int) -> None:
        """Nudge messages naming ``entities`` entities were published."""

    def nudge_failed(self, error: str, entities: int) -> None:
        """Publishing nudges for ``entities`` entities failed (the relay will find them)."""

    def nudges_left_out(self, messages: int, entities: int) -> None:
        """``messages`` nudges for ``entities`` entities were not published: the broker's queue
        was full (see :mod:`pystator.fleet.nudge_gate`); a ``drain`` is owed for them."""

    def nudge_handled(self, how: str) -> None:
        """A received nudge was ``dropped`` (known settled), ``stale`` (one read found nothing
        due) or ``applied`` (it got transactions)."""

    def action_finished(
        self, row: OutboxRow, error: BaseException | None, dead: bool, seconds: float
    ) -> None:
        """An outbox action ran: ``error`` is None on success; ``dead`` after its last attempt."""

    def timers_fired(self, timers: Sequence[ArmedTimer], now: datetime) -> None:
        """Due timers were turned into events at ``now``."""

    def relay_republished(self, entities: int) -> None:
        """The relay nudged ``entities`` entities whose due events nobody had taken."""

    def heartbeat(self, beat: Mapping[str, Any]) -> None:
        """The worker recorded its heartbeat (id, host, pid, progress, in-flight work)."""


class Observers(FleetObserver):
    """Several observers as one; a failing observer is logged and skipped, never propagated."""

    def __init__(self, observers: Sequence[FleetObserver] = ()) -> None:
        self.observers: list[FleetObserver] = list(observers)

    def add(self, observer: FleetObserver) -> None:
        """Attach another observer."""
        self.observers.append(observer)

    def _each(self, method: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception:  # an observer must never break the fleet: logged loudly
                log.exception("observer_failed", observer=type(observer).__name__, hook=method)

    def batch_committed(self, batch: Batch) -> None:
        """Fan out."""
        self._each("batch_committed", batch)

    def nudges_sent(self, messages: int, entities: int) -> None:
        """Fan out."""
        self._each("nudges_sent", messages, entities)

    def nudge_failed(self, error: str, entities: int) -> None:
        """Fan out."""
        self._each("nudge_failed", error, entities)

    def nudges_left_out(self, messages: int, entities: int) -> None:
        """Fan out."""
        self._each("nudges_left_out", messages, entities)

    def nudge_handled(self, how: str) -> None:
        """Fan out."""
        self._each("nudge_handled", how)

    def action_finished(
        self, row: OutboxRow, error: BaseException | None, dead: bool, seconds: float
    ) -> None:
        """Fan out."""
        self._each("action_finished", row, error, dead, seconds)

    def timers_fired(self, timers: Sequence[ArmedTimer], now: datetime) -> None:
        """Fan out."""
        self._each("timers_fired", timers, now)

    def relay_republished(self, entities: int) -> None:
        """Fan out."""
        self._each("relay_republished", entities)

    def heartbeat(self, beat: Mapping[str, Any]) -> None:
        """Fan out."""
        self._each("heartbeat", beat)


class LoggingObserver(FleetObserver):
    """Structured log lines: every event's outcome, failures at warning, the rest at debug."""

    def batch_committed(self, batch: Batch) -> None:
        """One line per event (``applied`` at debug, ``retry``/``dead`` at warning)."""
        for result in batch.results:
            log_result(result)

    def nudge_failed(self, error: str, entities: int) -> None:
        """Warn: the relay will re-publish."""
        log.warning("nudge_failed", error=error, entities=entities)

    def action_finished(
        self, row: OutboxRow, error: BaseException | None, dead: bool, seconds: float
    ) -> None:
        """Warn about failed actions."""
        if error is None:
            return
        log.warning(
            "action_dead" if dead else "action_failed",
            action_id=row.id,
            action=row.action,
            machine=row.machine,
            entity_id=row.entity_id,
            event_id=row.event_id,
            attempt=row.attempts + 1,
            error=f"{type(error).__name__}: {error}",
        )

    def timers_fired(self, timers: Sequence[ArmedTimer], now: datetime) -> None:
        """Debug: how many and how late."""
        log.debug("timers_fired", count=len(timers), late_ms=lateness_ms(timers, now))

    def relay_republished(self, entities: int) -> None:
        """Info: stranded work was found."""
        log.info("relay_nudged", entities=entities)


def log_result(result: EventResult) -> None:
    """The log line of one event's outcome."""
    event = result.event
    fields: dict[str, Any] = {
        "event_id": event.id,
        "machine": event.machine,
        "entity_id": event.entity_id,
        "trigger": event.trigger,
        "attempt": result.attempt,
        "outcome": str(result.outcome),
    }
    if result.outcome == Outcome.APPLIED:
        log.debug("event_applied", target_state=result.target_state, **fields)
    elif result.error is not None:
        log.warning("event_failed", error=result.error.get("message"), **fields)
    else:
        log.info("event_closed", reason=result.reason, **fields)


__all__ = ["FleetObserver", "LoggingObserver", "Observers", "log_result"]
