"""State stores: versioned (optimistically locked) entity records, plus history.

``InMemoryStateStore`` needs nothing; ``SqlStateStore`` / ``AsyncSqlStateStore`` need the ``db``
extra (and ``postgres`` for PostgreSQL); ``RedisStateStore`` / ``AsyncRedisStateStore`` need the
``redis`` extra. Optional stores are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pystator._shims import lazy_loader
from pystator.stores.base import (
    AsyncStateStore,
    AsyncVersionedStateStore,
    StateStore,
    VersionedStateStore,
)
from pystator.stores.documented import (
    AsyncDocumentedStoreAdapter,
    DocumentedStoreAdapter,
    as_versioned_store,
)
from pystator.stores.memory import InMemoryStateStore

_LAZY = {
    "SqlStateStore": "pystator.stores.sql.state_store",
    "AsyncSqlStateStore": "pystator.stores.sql.async_state_store",
    "RedisStateStore": "pystator.stores.redis_store",
    "AsyncRedisStateStore": "pystator.stores.redis_store",
}
MEMORY_URL = "memory://"

if TYPE_CHECKING:  # the lazy names, for type checkers and the API reference
    from pystator.stores.redis_store import AsyncRedisStateStore, RedisStateStore
    from pystator.stores.sql.async_state_store import AsyncSqlStateStore
    from pystator.stores.sql.state_store import SqlStateStore


__getattr__ = lazy_loader(__name__, _LAZY)


def create_store(url: str, *, is_async: bool = False) -> Any:
    """A store for ``url``: ``memory://``, ``redis://…``, or any SQLAlchemy URL (SQL store)."""
    scheme = url.split(":", 1)[0].lower()
    if url == MEMORY_URL:
        if is_async:
            raise ValueError("the in-memory store is synchronous (the Orchestrator accepts it)")
        return InMemoryStateStore()
    if scheme in ("redis", "rediss", "unix"):
        name = "AsyncRedisStateStore" if is_async else "RedisStateStore"
    else:
        name = "AsyncSqlStateStore" if is_async else "SqlStateStore"
    return __getattr__(name)(url)


__all__ = [
    "AsyncDocumentedStoreAdapter",
    "AsyncRedisStateStore",
    "AsyncSqlStateStore",
    "AsyncStateStore",
    "AsyncVersionedStateStore",
    "DocumentedStoreAdapter",
    "InMemoryStateStore",
    "RedisStateStore",
    "SqlStateStore",
    "StateStore",
    "VersionedStateStore",
    "as_versioned_store",
    "create_store",
]
