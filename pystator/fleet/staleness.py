"""Telling stale nudges from fresh ones without a transaction.

After a burst the broker still holds the burst's nudges although every event they announce has
been applied (a worker applies all of an entity's due events at once, so most nudges arrive
after their work is done). Each one used to cost a transaction before a fresh nudge behind them
was reached. Now:

1. a producer's nudge carries ``through``, the highest event id it announces, and is published
   only after those events committed;
2. a worker reads the id of the oldest due pending event
   (:func:`~pystator.stores.sql.event_queries.oldest_due_event`, one index lookup); every event
   with a smaller id that the read could see is settled or not yet due;
3. a nudge whose ``through`` is below that id is dropped with no further database work, **but
   only on a reading that started after the nudge arrived**: such a read sees the nudge's own
   events (they committed before it was published), whatever else is still in flight. No clock
   comparison and no margin for slow inserts, and nothing carried over from readings of an
   older table (ids restarted after a truncate, a restored backup);
4. readings are shared: nudges that arrive while one is under way wait for it and the next one,
   so a backlog of stale nudges costs a few reads, not one each; any nudge not dropped is
   checked with one read (which of its entities have due events) before any transaction.

A worker consults the watermark only while stale nudges are arriving (one was found stale or
dropped in the last ``STALE_WINDOW_SECONDS``); fresh traffic goes straight to that second read.
Nudges for work that became due by itself (relay, timers, replays) carry no ``through`` and are
always looked at; the relay stays the safety net either way.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from pystator.fsm_core.clock import Clock
from pystator.stores.sql import event_queries
from pystator.stores.sql.connections import autocommit
from pystator.stores.sql.db_clock import bind_now
from pystator.stores.sql.engine import translate_errors

#: How long after the last stale nudge the watermark stays in use.
STALE_WINDOW_SECONDS = 1.0


@dataclass
class NudgeCounts:
    """What this process did with the nudges it received (in its heartbeat, for operators)."""

    received: int = 0
    dropped: int = 0  # below the watermark: no further database work
    stale: int = 0  # one read found nothing due: no transaction
    transactions: int = 0  # transactions run for nudges
    watermark_reads: int = 0  # readings of the watermark (each one index lookup)
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
                "watermark_reads": self.watermark_reads,
            }


class SettledWatermark:
    """The oldest due pending event, as last read, and when that reading started.

    ``arrived_at`` and reading times are this process's ``time.monotonic()``.
    """

    def __init__(
        self, engine: Engine, *, clock: Clock | None = None, counts: NudgeCounts | None = None
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.counts = counts or NudgeCounts()
        self._changed = threading.Condition()
        self._reading = False
        self._started = float("-inf")  # start of the newest finished reading
        self._oldest_due: int | None = None
        self._stale_seen = float("-inf")

    @property
    def in_use(self) -> bool:
        """True while stale nudges are arriving (one was stale or dropped lately)."""
        return time.monotonic() - self._stale_seen < STALE_WINDOW_SECONDS

    def saw_stale(self) -> None:
        """Note that a nudge turned out stale: consult the watermark for the next ones."""
        self._stale_seen = time.monotonic()

    def covers(self, through: int | None, *, arrived_at: float) -> bool:
        """True when every event a nudge announces is settled or not due (drop the nudge).

        Decided on a reading that started after ``arrived_at``: taking one, or waiting for
        one under way. Nudges without ``through`` are never covered.
        """
        if through is None:
            return False
        oldest_due = self._reading_since(arrived_at)
        covered = oldest_due is None or through < oldest_due
        if covered:
            self.saw_stale()
        return covered

    def _reading_since(self, since: float) -> int | None:
        with self._changed:
            while self._started < since:
                if not self._reading:
                    self._reading = True
                    break
                self._changed.wait()
            else:
                return self._oldest_due
        started = time.monotonic()
        read = False
        oldest_due: int | None = None
        try:
            with translate_errors("settled watermark"), autocommit(self.engine) as conn:
                oldest_due = event_queries.oldest_due_event(conn, bind_now(conn, self.clock))
            read = True
            self.counts.add(watermark_reads=1)
        finally:  # a failed reading is not recorded: None would mean "nothing is due"
            with self._changed:
                self._reading = False
                if read and started > self._started:
                    self._started, self._oldest_due = started, oldest_due
                self._changed.notify_all()
        return oldest_due


__all__ = ["STALE_WINDOW_SECONDS", "NudgeCounts", "SettledWatermark"]
