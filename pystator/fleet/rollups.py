"""Per-minute event counts for charts: counted in memory as batches commit, written to
``event_rollups`` with each heartbeat.

A chart of applied / retried / dead events per minute must survive restarts and must not
depend on the events themselves (retention removes them), nor cost the hot path a write to a
shared row per transaction. So each worker process counts what its transactions committed and
adds the counts to the table in its heartbeat's transaction (every ``PYSTATOR_HEARTBEAT_SECONDS``);
counts that could not be written are kept for the next beat. A process killed with SIGKILL
loses at most one heartbeat interval of counts — charts, not bookkeeping.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping

from sqlalchemy.engine import Engine

from pystator.fleet.batch import Batch
from pystator.fleet.observer import FleetObserver
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.records import Outcome
from pystator.stores.sql import rollup_queries
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.rollup_queries import RollupKey

#: The rollup outcome of each attempt's :class:`Outcome`.
ROLLUP_OUTCOMES: Mapping[Outcome, str] = {
    Outcome.APPLIED: "applied",
    Outcome.REJECTED: "rejected",
    Outcome.STALE: "stale",
    Outcome.RETRY: "retried",
    Outcome.DEAD: "dead",
}
#: Most distinct (minute, machine, outcome) keys held while the database is unreachable; past
#: it the oldest minutes are dropped (a worker cut off for hours keeps bounded memory).
MAX_HELD_KEYS = 50_000


class EventRollups(FleetObserver):
    """Counts committed outcomes per minute and machine until :meth:`take` hands them over."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock
        self._counts: Counter[RollupKey] = Counter()
        self._lock = threading.Lock()

    def batch_committed(self, batch: Batch) -> None:
        """Count every event's outcome in this minute."""
        if not batch.results:
            return
        minute = self.clock().replace(second=0, microsecond=0)
        with self._lock:
            for result in batch.results:
                key = (minute, result.event.machine, ROLLUP_OUTCOMES[result.outcome])
                self._counts[key] += 1

    def take(self) -> dict[RollupKey, int]:
        """The counts so far (and forget them): the caller writes them or :meth:`restore`s."""
        with self._lock:
            counts = dict(self._counts)
            self._counts.clear()
        return counts

    def flush(self, engine: Engine) -> None:
        """Write what was counted now, in a transaction of its own (kept on failure)."""
        counts = self.take()
        if not counts:
            return
        try:
            with translate_errors("rollups"), transaction(engine) as conn:
                rollup_queries.add(conn, counts)
        except BaseException:
            self.restore(counts)
            raise

    def restore(self, counts: Mapping[RollupKey, int]) -> None:
        """Put back counts that could not be written (bounded: oldest minutes go first)."""
        with self._lock:
            self._counts.update(counts)
            if len(self._counts) > MAX_HELD_KEYS:
                for key in sorted(self._counts)[: len(self._counts) - MAX_HELD_KEYS]:
                    del self._counts[key]


__all__ = ["MAX_HELD_KEYS", "ROLLUP_OUTCOMES", "EventRollups"]
