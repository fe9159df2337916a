"""The one wall clock: aware UTC time. Components take a ``Clock`` so tests can move time.

The engine's default clock (``timestamp:`` effects) and the fleet's, the stores' and the
schedulers' all come from here; SQLite's naive datetimes are read back with :func:`as_utc`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: Returns the current time as an aware UTC datetime.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def now_of(clock: Clock | None) -> datetime:
    """``clock()``, or this host's clock when none is given (for times no database statement
    decides: a fleet component given no clock follows the database's, see
    ``pystator.stores.sql.db_clock``)."""
    return utc_now() if clock is None else clock()


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC. A naive value (SQLite hands them back naive) is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    """:func:`as_utc` for a nullable column."""
    return None if value is None else as_utc(value)


__all__ = ["Clock", "as_utc", "as_utc_or_none", "now_of", "utc_now"]
