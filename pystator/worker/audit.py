"""The audit log: who changed what through the HTTP API, when, and how many rows it touched."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from pystator.stores.sql import audit_queries
from pystator.stores.sql.audit_queries import AuditEntry, AuditFilter, AuditRecord
from pystator.stores.sql.connections import autocommit
from pystator.stores.sql.engine import translate_errors


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


__all__ = ["AuditEntry", "AuditFilter", "AuditRecord", "list_entries", "record"]
