"""The asynchronous SQL state store (``postgresql+psycopg`` async or ``sqlite+aiosqlite``).

Why it exists: ``async_process_event`` on an event loop must not block it on a database call.

The same queries as the sync store (:mod:`pystator.stores.sql.entity_queries`), run on the async
connection with ``run_sync`` so there is one copy of the SQL.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from pystator.fsm_core.records import EntityRecord, HistoryEntry
from pystator.stores.base import check_history, check_version
from pystator.stores.documented import AsyncDocumentedStoreMethods
from pystator.stores.sql import entity_queries as queries
from pystator.stores.sql import history_queries
from pystator.stores.sql.engine import create_async_engine_from_url, translate_errors


def _save(
    conn: Connection, record: EntityRecord, expected_version: int, history: HistoryEntry | None
) -> None:
    queries.save_record(conn, record, expected_version=expected_version)
    if history is not None:
        history_queries.insert_history(conn, [history])


class AsyncSqlStateStore(AsyncDocumentedStoreMethods):
    """An :class:`~pystator.stores.base.AsyncVersionedStateStore` over the ``entity_states`` table."""

    def __init__(self, url: str | URL | None = None, *, engine: AsyncEngine | None = None) -> None:
        if (url is None) == (engine is None):
            raise ValueError("pass exactly one of url or engine")
        self._owns_engine = engine is None
        self.engine: AsyncEngine = (
            engine if engine is not None else create_async_engine_from_url(url or "")
        )
        # Reads need no transaction: autocommit saves the BEGIN/ROLLBACK round trips.
        self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def load(self, machine: str, entity_id: str) -> EntityRecord | None:
        """The stored record of the entity, or None."""
        with translate_errors():
            async with self._reader.connect() as conn:
                return await conn.run_sync(queries.load_record, machine, entity_id)

    async def save(
        self,
        record: EntityRecord,
        *,
        expected_version: int,
        history: HistoryEntry | None = None,
    ) -> None:
        """Write ``record`` and its history row in one transaction, if the version matches."""
        check_version(record, expected_version)
        check_history(record, history)
        with translate_errors():
            async with self.engine.begin() as conn:
                await conn.run_sync(_save, record, expected_version, history)

    async def history(self, machine: str, entity_id: str) -> list[HistoryEntry]:
        """Every history entry of the entity, oldest version first."""
        with translate_errors():
            async with self._reader.connect() as conn:
                return await conn.run_sync(history_queries.load_history, machine, entity_id)

    async def close(self) -> None:
        """Dispose the engine if this store created it."""
        if self._owns_engine:
            await self.engine.dispose()


__all__ = ["AsyncSqlStateStore"]
