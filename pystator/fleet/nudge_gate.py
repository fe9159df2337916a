"""Keeping the broker's nudge queue short: a producer stops publishing past a bound.

The table is the source of truth and a nudge only makes a worker look sooner, so a producer may
leave nudges out; what it must not do is fill the broker with O(events) messages while no worker
consumes them (a fleet scaled to zero, a deploy, a crash), because every one of them is read
after the backlog is applied and a fresh event's nudge queues behind them all.

**The rule.** Each publishing process keeps a reading of the queue's depth (messages ready in
the broker) and counts the messages it published since. It publishes only while its latest
reading was below ``bound`` (B) and it has published fewer than ``allowance`` (A) messages since
that reading; otherwise it reads again: at once when it has used up its allowance under a
reading below B (so the broker is read once per A messages published at most), at most once per
``refresh`` seconds while the queue is full, and in the meantime it publishes nothing. Readings
are taken in the nudger's background thread, never on the submit path.

**The bound.** With P publishing processes (producers, API processes, workers' relays and timer
firings) the queue never holds more than ``B + P * A`` nudges. Take the last reading, by any
process, that saw fewer than B messages (at time u): every reading after u saw B or more, so
after u each process publishes only under the licence of its own latest reading below B, which
ends after A messages: depth(t) < B + P * A. (No reading below B ever: nothing was published.)
With the defaults (B = 128, A = 16) and a producer, an API process and three workers that is
208 messages, whatever the backlog, where an unbounded producer left one per few events.

**What a left-out nudge costs.** Nothing is lost: the events are in the table. The gate
remembers its debt (the highest event id it left out) and, from its background thread, re-reads
the depth every ``refresh`` seconds until it is below B, then publishes one ``drain`` message
(claiming due entities in batches) in place of all of them. A broker whose depth cannot be read
(an error: the broker is down, or the transport has no way to tell) leaves the gate open: the
publishes fail or go through as before, and the warning is logged once. A worker that starts drains the
backlog at once without any nudge (:mod:`pystator.fleet.startup`), and the relay remains the net.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pystator.config.logs import get_logger

#: Messages one process may publish after a reading below the bound, before it reads again.
DEFAULT_ALLOWANCE = 16
#: Fewest seconds between two readings of the queue's depth by one process.
DEFAULT_REFRESH_SECONDS = 0.1

#: ``() -> messages ready in the nudge queue`` (raises when the broker cannot be read).
DepthReader = Callable[[], int]

log = get_logger("pystator.nudge")


class NudgeGate:
    """Whether this process may publish nudges now (thread-safe; see the module's rule)."""

    def __init__(
        self,
        depth: DepthReader,
        *,
        bound: int,
        allowance: int = DEFAULT_ALLOWANCE,
        refresh: float = DEFAULT_REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.depth = depth
        self.bound = bound
        self.allowance = allowance
        self.refresh = refresh
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._reading: int | None = None  # None: never read
        self._unreadable = False
        self._read_at = float("-inf")
        self._sent = 0  # messages published since the reading
        self._debt: int | None = None  # highest event id left out (None: no debt, or unknown)
        self._in_debt = False
        self.readings = 0
        self.left_out = 0  # messages not published, in all

    @property
    def last_reading(self) -> int | None:
        """The depth the latest successful reading saw."""
        return self._reading

    def room(self) -> int:
        """How many messages may be published now (re-reading the depth when allowed)."""
        with self._lock:
            if self._may_publish():
                return self.allowance - self._sent
            full = self._reading is not None and self._reading >= self.bound
            if full and self.monotonic() - self._read_at < self.refresh:
                return 0
            self._read()
            return self.allowance - self._sent if self._may_publish() else 0

    def sent(self, messages: int) -> None:
        """Count messages just published under the current reading."""
        with self._lock:
            self._sent += messages

    def leave_out(self, messages: int, through: int | None) -> None:
        """Note nudges not published: a ``drain`` is owed for them (see :meth:`take_debt`)."""
        with self._lock:
            self.left_out += messages
            if not self._in_debt:
                self._in_debt, self._debt = True, through
            elif self._debt is not None:
                self._debt = None if through is None else max(self._debt, through)

    @property
    def in_debt(self) -> bool:
        """True while left-out nudges still wait for their ``drain`` message."""
        return self._in_debt

    def take_debt(self) -> tuple[bool, int | None]:
        """``(True, through)`` when a ``drain`` for the left-out nudges may be published now
        (the debt is then cleared and the message counted); ``(False, None)`` otherwise."""
        if not self._in_debt or self.room() < 1:
            return False, None
        with self._lock:
            through, self._in_debt, self._debt = self._debt, False, None
            self._sent += 1
        return True, through

    def _may_publish(self) -> bool:
        reading = self._reading
        return reading is not None and reading < self.bound and self._sent < self.allowance

    def _read(self) -> None:
        self._read_at = self.monotonic()
        self._sent = 0
        try:
            self._reading = int(self.depth())
        except Exception as exc:  # any broker error: publish as if ungated (the relay is the net)
            self._reading = 0
            if not self._unreadable:
                log.warning("nudge_queue_unreadable", error=f"{type(exc).__name__}: {exc}")
            self._unreadable = True
            return
        self._unreadable = False
        self.readings += 1


__all__ = ["DEFAULT_ALLOWANCE", "DEFAULT_REFRESH_SECONDS", "DepthReader", "NudgeGate"]
