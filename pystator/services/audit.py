"""The audit log: who changed what, through which door, when, and how many rows it touched.

Configuration changes (machines published or retired, API keys, webhooks) are recorded by the
function that makes them, whichever door calls it — the HTTP API and the dashboard (the caller),
the command line (``cli:<user>@<host>``), the Python facade (``runtime:<user>@<host>``) — in the
change's own transaction, with its :class:`ChangeKind`: each caller passes its :class:`Actor`.
Repairs made through the API write their row at once (:func:`record`). Event submissions —
hundreds per second — go through an :class:`AuditWriter`: rows are queued and written together
every :data:`FLUSH_SECONDS` (and when the process stops), one statement per flush. A process that
is killed loses at most that last fraction of a second of submission rows (the events themselves
are in ``worker_events`` either way).

Its entry, record and filter types are this module's interface (defined next to their SQL in
:mod:`pystator.stores.sql.audit_queries`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

from pystator.config.logs import get_logger
from pystator.fsm_core.errors import StoreError
from pystator.stores.sql import audit_queries
from pystator.stores.sql.audit_queries import (
    Actor,
    AuditEntry,
    AuditFilter,
    AuditRecord,
    ChangeKind,
)
from pystator.stores.sql.connections import autocommit
from pystator.stores.sql.engine import translate_errors

#: Seconds between two writes of queued audit rows.
FLUSH_SECONDS = 0.2
#: Queued rows kept while the database is unreachable (older ones are dropped, and logged).
MAX_QUEUED = 100_000

log = get_logger("pystator.audit")


def record(engine: Engine, entry: AuditEntry) -> int:
    """Append ``entry`` (one autocommit statement); returns its id."""
    with translate_errors("audit log"), autocommit(engine) as conn:
        return audit_queries.insert_entry(conn, entry)


def list_entries(
    engine: Engine, where: AuditFilter, *, limit: int, before_id: int | None = None
) -> list[AuditRecord]:
    """Audit rows matching ``where``, newest first; ``before_id`` continues after a page."""
    with translate_errors("audit log"), engine.connect() as conn:
        return audit_queries.list_entries(conn, where, limit=limit, before_id=before_id)


class AuditWriter:
    """Queues audit rows and writes them from a background thread, several per statement."""

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = FLUSH_SECONDS,
        write: Callable[[Engine, list[AuditEntry]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self._write = write or _write_entries
        self._queue: list[AuditEntry] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pystator-audit", daemon=True)
        self._thread.start()

    def add(self, entry: AuditEntry) -> None:
        """Queue ``entry`` (written within :attr:`interval`)."""
        with self._lock:
            self._queue.append(entry)
            if len(self._queue) > MAX_QUEUED:
                del self._queue[: len(self._queue) - MAX_QUEUED]
                log.error("audit_rows_dropped", kept=MAX_QUEUED)

    def flush(self) -> None:
        """Write what is queued now (rows that fail stay queued for the next flush)."""
        with self._lock:
            entries, self._queue = self._queue, []
        if not entries:
            return
        try:
            self._write(self.engine, entries)
        except StoreError as exc:
            log.warning("audit_write_failed", rows=len(entries), error=str(exc))
            with self._lock:
                self._queue[:0] = entries

    def close(self) -> None:
        """Stop the thread after a last flush."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
        self.flush()


def _write_entries(engine: Engine, entries: list[AuditEntry]) -> None:
    with translate_errors("audit log"), autocommit(engine) as conn:
        audit_queries.insert_entries(conn, entries)


__all__ = [
    "Actor",
    "AuditEntry",
    "AuditFilter",
    "AuditRecord",
    "AuditWriter",
    "ChangeKind",
    "list_entries",
    "record",
]
