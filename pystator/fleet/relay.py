"""The relay: the safety net that makes the broker an accelerator, not a durability requirement.

Every ``interval`` it re-publishes nudges for due pending events nobody took (a lost message, a
broker restart, a ``fires_at`` or retry time that has come, a timer that is due), queues new
webhook deliveries (:mod:`pystator.fleet.webhooks`) and sweeps the action outbox for actions
whose worker died before running them, retries and webhook deliveries. Running several relays is
safe: nudges, delivery rows and outbox claims are idempotent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from pystator.config.logs import get_logger
from pystator.fleet.runtime import Runtime
from pystator.fsm_core.errors import StoreError, StoreUnavailableError
from pystator.fsm_core.records import EntityKey
from pystator.stores.sql import event_queries
from pystator.stores.sql.db_clock import bind_now
from pystator.stores.sql.engine import translate_errors

#: Entities nudged per tick at most (the rest wait for the next tick).
DEFAULT_RELAY_LIMIT = 1000
#: What :attr:`Relay.leave` returns while every due event is left to a start-up drain.
EVERYTHING = -1

log = get_logger("pystator.relay")


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayTick:
    """What one relay pass did."""

    nudged: int
    actions_run: int


class Relay:
    """Re-publishes nudges for stranded due events and runs stranded outbox actions."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        interval: float | None = None,
        limit: int = DEFAULT_RELAY_LIMIT,
        leave: Callable[[], int | None] = lambda: None,
    ) -> None:
        """``leave()``: while a start-up drain of this process walks its backlog, the newest
        event id of that backlog (:data:`EVERYTHING` before it knows): entities whose oldest
        pending event is that old are the drain's, and nudging them would only set this
        worker's consumers racing its drain threads for the same entities."""
        self.runtime = runtime
        self.interval = interval or runtime.settings.relay_interval_seconds
        self.limit = limit
        self.leave = leave

    def tick(self) -> RelayTick:
        """One pass: nudge stranded entities, then sweep the outbox."""
        keys = self._stranded()
        if keys:
            self.runtime.nudger.nudge(keys)
            self.runtime.observer.relay_republished(len(keys))
        try:  # queue new webhook deliveries, which the sweep sends
            self.runtime.webhooks.tick()
        except StoreUnavailableError:
            raise
        except StoreError as exc:  # never holds back the actions' sweep
            log.warning("webhook_dispatch_failed", error=str(exc))
        # a full page is swept again at once, for at most one interval: the tick's cadence holds
        actions = self.runtime.outbox.sweep(seconds=self.interval)
        return RelayTick(nudged=len(keys), actions_run=actions)

    def _stranded(self) -> list[EntityKey]:
        after = self.leave()
        if after == EVERYTHING:
            return []
        clock = self.runtime.processor.clock
        with translate_errors("relay"), self.runtime.engine.connect() as conn:
            return event_queries.due_unclaimed_events(
                conn,
                bind_now(conn, clock),
                grace=self.runtime.relay_grace(),
                limit=self.limit,
                after=after or 0,
            )

    def run(self, stop: threading.Event, tick: Callable[[], None] = lambda: None) -> None:
        """Tick every ``interval`` until ``stop`` is set; database outages are logged, not fatal."""
        while not stop.is_set():
            tick()
            try:
                self.tick()
            except StoreError as exc:
                log.warning("relay_store_error", error=str(exc))
            stop.wait(self.interval)


__all__ = ["DEFAULT_RELAY_LIMIT", "EVERYTHING", "Relay", "RelayTick"]
