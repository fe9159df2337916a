"""The queued audit writer: rows written in groups, kept when a write fails, flushed on close."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pystator.fsm_core.errors import StoreUnavailableError
from pystator.services.audit import AuditWriter
from pystator.stores.sql.audit_queries import AuditEntry


def _entry(n: int) -> AuditEntry:
    return AuditEntry(
        at=datetime(2026, 1, 1, tzinfo=UTC),
        principal="p",
        role="operator",
        method="POST",
        route="/api/v1/events",
        status=201,
        target=f"event:{n}",
    )


def test_failed_writes_keep_the_rows_and_close_flushes() -> None:
    written: list[list[AuditEntry]] = []
    failures = [StoreUnavailableError("down")]

    def write(_engine: Any, entries: list[AuditEntry]) -> None:
        if failures:
            raise failures.pop()
        written.append(list(entries))

    writer = AuditWriter(engine=None, interval=3600, write=write)  # type: ignore[arg-type]
    writer.add(_entry(1))
    writer.add(_entry(2))
    writer.flush()  # fails: both stay queued
    assert written == []
    writer.add(_entry(3))
    writer.close()  # the last flush writes all three, in order, in one call
    assert [[e.target for e in batch] for batch in written] == [["event:1", "event:2", "event:3"]]
