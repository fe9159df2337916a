"""The documented SQL store names: ``SQLiteStateStore`` and ``PostgresStateStore``.

Why they exist: the seed README names them and their ``connect()``, which our
:class:`~pystator.stores.sql.state_store.SqlStateStore` does not have. Both are that store (one
SQL store, two dialects) plus ``connect()``: ``auto_initialize=True`` brings the schema to the
newest migration (:mod:`.migrator`: Alembic, the only way our schema is ever created),
``validate_schema=True`` refuses a database that is not at the newest migration.
"""

from __future__ import annotations

from pathlib import Path

from pystator.config.settings import load_settings
from pystator.fsm_core.errors import StoreError
from pystator.stores.sql import migrator
from pystator.stores.sql.state_store import SqlStateStore

SQLITE_FILE = "pystator.db"


def default_sqlite_url() -> str:
    """``PYSTATOR_DATABASE_URL`` (or ``pystator.cfg``) when it names SQLite, else a
    ``pystator.db`` file in the working directory; a relative file is made absolute."""
    configured = load_settings().database_url
    if not configured.startswith("sqlite"):
        return f"sqlite:///{Path.cwd() / SQLITE_FILE}"
    scheme, sep, path = configured.partition(":///")
    if sep and path and not path.startswith(("/", ":memory:")) and "?" not in path:
        return f"{scheme}:///{Path.cwd() / path}"
    return configured


class _ConnectingSqlStore(SqlStateStore):
    def __init__(self, connection_string: str) -> None:
        super().__init__(connection_string)
        self.connection_string = connection_string

    def connect(self, *, auto_initialize: bool = False, validate_schema: bool = True) -> None:
        """Check the database: migrate it to the newest schema (``auto_initialize``), or refuse
        one that is not there (``validate_schema``)."""
        if auto_initialize:
            migrator.upgrade(self.connection_string)
            return
        if validate_schema and migrator.current(self.connection_string) != migrator.head():
            raise StoreError(
                "the database schema is not at the newest migration: run "
                f"'pystator db upgrade' (or connect(auto_initialize=True)) for {self.engine.url!r}"
            )


class SQLiteStateStore(_ConnectingSqlStore):
    """The SQL store on SQLite (default URL: :func:`default_sqlite_url`)."""

    def __init__(self, connection_string: str | None = None) -> None:
        super().__init__(connection_string or default_sqlite_url())

    def connect(self, *, auto_initialize: bool = True, validate_schema: bool = True) -> None:
        """Like the base ``connect``, migrating by default (the documented SQLite default)."""
        super().connect(auto_initialize=auto_initialize, validate_schema=validate_schema)


class PostgresStateStore(_ConnectingSqlStore):
    """The SQL store on PostgreSQL (psycopg 3); the connection string is required.

    ``postgresql://`` URLs are accepted as written (the psycopg 3 driver is used)."""

    def __init__(self, connection_string: str) -> None:
        if not connection_string:
            raise ValueError("PostgresStateStore needs a connection string")
        super().__init__(connection_string)


__all__ = ["PostgresStateStore", "SQLiteStateStore", "default_sqlite_url"]
