"""The clock the worker reads time from (injected so tests can move it instead of sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime

from pystator.clock import Clock, utc_now


def as_utc(value: datetime | None) -> datetime | None:
    """Attach UTC to naive datetimes (SQLite hands them back naive)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


__all__ = ["Clock", "as_utc", "utc_now"]
