"""The synchronous SQL state store (SQLAlchemy 2: SQLite, or PostgreSQL through psycopg 3).

Why it exists: the Orchestrator and a user's code keep entities in SQL with optimistic locking,
from plain (threaded) code.

Each ``save`` is one transaction: the versioned state write and its ``transition_history`` row
commit together. The queries live in :mod:`pystator.stores.sql.entity_queries`; driver errors are
translated by :func:`pystator.stores.sql.engine.translate_errors`.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, Engine

from pystator.fsm_core.records import EntityRecord, HistoryEntry
from pystator.stores.base import check_history, check_version
from pystator.stores.documented import DocumentedStoreMethods
from pystator.stores.sql import entity_queries as queries
from pystator.stores.sql import history_queries
from pystator.stores.sql.engine import create_engine_from_url, translate_errors

READ_ISOLATION = "AUTOCOMMIT"


class SqlStateStore(DocumentedStoreMethods):
    """A :class:`~pystator.stores.base.VersionedStateStore` over the ``entity_states`` table.

    Pass a URL (the store owns and disposes its engine) or an existing ``engine`` (left open).
    The schema must exist: run ``pystator db upgrade`` or :func:`pystator.migrations.upgrade`.
    """

    def __init__(self, url: str | URL | None = None, *, engine: Engine | None = None) -> None:
        if (url is None) == (engine is None):
            raise ValueError("pass exactly one of url or engine")
        self._owns_engine = engine is None
        self.engine: Engine = engine if engine is not None else create_engine_from_url(url or "")
        # Reads need no transaction: autocommit saves the BEGIN/ROLLBACK round trips.
        self._reader = self.engine.execution_options(isolation_level=READ_ISOLATION)

    def load(self, machine: str, entity_id: str) -> EntityRecord | None:
        """The stored record of the entity, or None."""
        with translate_errors(), self._reader.connect() as conn:
            return queries.load_record(conn, machine, entity_id)

    def save(
        self,
        record: EntityRecord,
        *,
        expected_version: int,
        history: HistoryEntry | None = None,
    ) -> None:
        """Write ``record`` and its history row in one transaction, if the version matches."""
        check_version(record, expected_version)
        check_history(record, history)
        with translate_errors(), self.engine.begin() as conn:
            queries.save_record(conn, record, expected_version=expected_version)
            if history is not None:
                history_queries.insert_history(conn, [history])

    def history(self, machine: str, entity_id: str) -> list[HistoryEntry]:
        """Every history entry of the entity, oldest version first."""
        with translate_errors(), self._reader.connect() as conn:
            return history_queries.load_history(conn, machine, entity_id)

    def close(self) -> None:
        """Dispose the engine if this store created it."""
        if self._owns_engine:
            self.engine.dispose()


__all__ = ["SqlStateStore"]
