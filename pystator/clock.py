"""The one wall clock: aware UTC time. Components take a ``Clock`` so tests can move time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

#: Returns the current time as an aware UTC datetime.
Clock = Callable[[], datetime]
#: Measures how far a reference clock is ahead of the given local clock; None when it could not.
OffsetProbe = Callable[[Clock], "timedelta | None"]

#: Seconds between two measurements of an :class:`AlignedClock`'s offset.
DEFAULT_ALIGN_SECONDS = 30.0


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC. A naive value (SQLite hands them back naive) is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    """:func:`as_utc` for a nullable column."""
    return None if value is None else as_utc(value)


class AlignedClock:
    """A clock that reads the local wall clock plus the last measured offset to a reference
    clock (the fleet's database server), so that every process of a fleet agrees on when an
    event is due, whatever its host's clock says.

    Calling it never does I/O. :meth:`refresh_if_stale` measures the offset (through ``probe``)
    when the last measurement is older than ``every_seconds``; callers invoke it where a
    round trip is harmless (before a submit, before applying a nudge), never while holding a
    connection. A failed measurement keeps the previous offset (zero before the first).
    """

    def __init__(
        self,
        probe: OffsetProbe | None,
        *,
        local: Clock = utc_now,
        every_seconds: float = DEFAULT_ALIGN_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe = probe
        self.local = local
        self.every_seconds = every_seconds
        self.monotonic = monotonic
        self.offset = timedelta(0)
        self.measurements = 0
        self._measured_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self.local() + self.offset

    def refresh_if_stale(self) -> None:
        """Measure the offset again if the last measurement is ``every_seconds`` old (one
        thread measures; the others go on with the current offset)."""
        if self.probe is None:
            return
        started = self.monotonic()
        if self._measured_at is not None and started - self._measured_at < self.every_seconds:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._measured_at = started  # a failure too: an unreachable server is not hammered
            offset = self.probe(self.local)
            if offset is not None:
                self.offset = offset
                self.measurements += 1
        finally:
            self._lock.release()


def refresh_clock(clock: Clock) -> None:
    """Let an :class:`AlignedClock` measure its offset again if it is stale; nothing for any
    other clock (a test's, the plain wall clock). Call it where a round trip is harmless."""
    if isinstance(clock, AlignedClock):
        clock.refresh_if_stale()


__all__ = [
    "DEFAULT_ALIGN_SECONDS",
    "AlignedClock",
    "Clock",
    "OffsetProbe",
    "as_utc",
    "as_utc_or_none",
    "refresh_clock",
    "utc_now",
]
