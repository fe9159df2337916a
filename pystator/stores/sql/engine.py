"""SQLAlchemy engines for pystator URLs, and the one place SQL driver errors are translated.

``create_engine_from_url`` normalizes PostgreSQL URLs to psycopg 3 and configures SQLite for
concurrent use (WAL, busy timeout, foreign keys). ``translate_errors`` maps SQLAlchemy / DBAPI
exceptions to :class:`~pystator.fsm_core.errors.StoreError` subclasses with the cause kept.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from pystator.fsm_core.errors import StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_SECONDS = 10
_PG_SYNC_DRIVER = "postgresql+psycopg"
_SQLITE_ASYNC_DRIVER = "sqlite+aiosqlite"


def normalize_url(url: str | URL, *, is_async: bool = False) -> URL:
    """Parse ``url`` and pick pystator's drivers (psycopg 3 for PostgreSQL, aiosqlite for async)."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername=_PG_SYNC_DRIVER)
    if backend == "sqlite":
        return parsed.set(drivername=_SQLITE_ASYNC_DRIVER if is_async else "sqlite")
    return parsed


def is_sqlite(url: str | URL) -> bool:
    """True when ``url`` names a SQLite database."""
    return sa.make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _engine_kwargs(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"check_same_thread": False}}
    return {
        "pool_pre_ping": True,
        "connect_args": {"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS},
    }


def create_engine_from_url(url: str | URL, **kwargs: Any) -> Engine:
    """A sync engine for ``url`` with pystator's driver and connection settings."""
    parsed = normalize_url(url)
    engine = sa.create_engine(parsed, **{**_engine_kwargs(parsed), **kwargs})
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def create_async_engine_from_url(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (``postgresql+psycopg`` async or ``sqlite+aiosqlite``).

    SQLAlchemy's asyncio extension is imported here, not with this module: it brings the ORM
    (0.2 s of a worker's start-up), which only the async stores use."""
    from sqlalchemy.ext.asyncio import create_async_engine

    parsed = normalize_url(url, is_async=True)
    engine = create_async_engine(parsed, **{**_engine_kwargs(parsed), **kwargs})
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


@functools.cache
def _driver_errors() -> tuple[type[BaseException], ...]:
    """The exception types :func:`translate_errors` maps: SQLAlchemy's, sqlite3's, and psycopg's
    own (raised by the producer's raw-cursor path, which bypasses SQLAlchemy). Looked up on the
    first error, so importing this module does not import psycopg."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is optional
        return (sa.exc.SQLAlchemyError, sqlite3.Error)
    return (sa.exc.SQLAlchemyError, sqlite3.Error, psycopg.Error)


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.OperationalError | sa.exc.TimeoutError):
        return True
    orig = getattr(exc, "orig", exc)
    if isinstance(orig, sqlite3.OperationalError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is optional
        return False
    return isinstance(orig, psycopg.OperationalError)


@contextmanager
def translate_errors(what: str = "SQL store") -> Iterator[None]:
    """Translate SQLAlchemy/DBAPI errors raised inside the block into the pystator error tree."""
    try:
        yield
    except OSError as exc:
        raise StoreUnavailableError(f"{what} unavailable: {exc}") from exc
    except Exception as exc:
        if not isinstance(exc, _driver_errors()):
            raise
        if _is_unavailable(exc):
            raise StoreUnavailableError(f"{what} unavailable: {_short(exc)}") from exc
        raise StoreError(f"{what} failed: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


__all__ = [
    "create_async_engine_from_url",
    "create_engine_from_url",
    "is_sqlite",
    "normalize_url",
    "translate_errors",
]
