"""Telling stale nudges from fresh ones without asking the database every time.

After a burst the broker still holds the burst's nudges although every event they announce has
been applied (a worker applies all of an entity's due events at once, so most nudges arrive
after their work is done). Each one used to cost a transaction before a fresh nudge behind them
was reached. Now:

1. a producer's nudge carries ``through``, the highest event id it announces;
2. each worker process keeps a watermark: every event with an id up to it is settled or not
   due (:func:`~pystator.stores.sql.event_queries.settled_through`, one cheap statement, asked
   at most every ``refresh_seconds`` and only when stale nudges are arriving);
3. a nudge whose ``through`` is under the watermark is dropped with no database work at all;
   any other is first checked with one read (which of its entities have due events) and only
   then given a transaction.

Events inserted in the last ``in_flight_seconds`` are left out of the watermark, so an insert
that took its id but had not committed when the watermark was read is never taken for settled.
Nudges for work that became due by itself (relay, timers, replays) carry no ``through`` and are
always looked at; the relay stays the safety net either way.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.engine import Engine

from pystator.clock import Clock, utc_now
from pystator.stores.sql import event_queries
from pystator.stores.sql.connections import autocommit
from pystator.stores.sql.engine import translate_errors

DEFAULT_REFRESH_SECONDS = 0.05
DEFAULT_IN_FLIGHT_SECONDS = 0.5


@dataclass
class NudgeCounts:
    """What this process did with the nudges it received (in its heartbeat, for operators)."""

    received: int = 0
    dropped: int = 0  # under the watermark: no database work
    stale: int = 0  # one read found nothing due: no transaction
    transactions: int = 0  # transactions run for nudges
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        """Add to the counters."""
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain mapping."""
        with self.lock:
            return {
                "received": self.received,
                "dropped": self.dropped,
                "stale": self.stale,
                "transactions": self.transactions,
            }


class SettledWatermark:
    """This process's knowledge of which events are settled: all ids up to :attr:`through`."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = utc_now,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        in_flight_seconds: float = DEFAULT_IN_FLIGHT_SECONDS,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.in_flight = timedelta(seconds=in_flight_seconds)
        self.through = 0
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def covers(self, through: int | None) -> bool:
        """True when every event a nudge announces is known settled (drop it)."""
        return through is not None and through <= self.through

    def refresh(self) -> None:
        """Read the watermark again, unless it was read less than ``refresh_seconds`` ago."""
        with self._lock:
            started = time.monotonic()
            if started - self._checked < self.refresh_seconds:
                return
            self._checked = started
        now = self.clock()
        with translate_errors("settled watermark"), autocommit(self.engine) as conn:
            through = event_queries.settled_through(conn, now, created_before=now - self.in_flight)
        with self._lock:
            self.through = max(self.through, through)


__all__ = ["NudgeCounts", "SettledWatermark"]
