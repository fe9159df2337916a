"""Discovery stores: in memory, PostgreSQL and SQLite, and :func:`create_discovery_store`."""

from __future__ import annotations

import sqlalchemy as sa

from pystator import migrations
from pystator.config.settings import Settings, load_settings
from pystator.discovery.stores.base import (
    MAX_ENTITY_IDS,
    CandidateStore,
    DiscoveryStore,
    DraftStore,
    ObservationStore,
)
from pystator.discovery.stores.memory import InMemoryDiscoveryStore
from pystator.discovery.stores.sql import (
    PostgresDiscoveryStore,
    SqlDiscoveryStore,
    SQLiteDiscoveryStore,
)
from pystator.fsm_core.errors import SettingsError, StoreError
from pystator.stores.sql.engine import is_sqlite, normalize_url

#: The URL that selects the in-memory store.
MEMORY_URL = "memory://"


def create_discovery_store(
    url: str | None = None, *, settings: Settings | None = None
) -> DiscoveryStore:
    """The discovery store for ``url``; the backend is read from its scheme.

    ``url`` defaults to ``PYSTATOR_DISCOVERY_DATABASE_URL``, which falls back to
    ``PYSTATOR_DATABASE_URL`` (``settings``, or the environment and ``pystator.cfg``).
    ``memory://`` is the in-memory store. A SQLite file is created or migrated on the spot (the
    embedded mode); a PostgreSQL database must be at the newest migration already (``pystator
    db upgrade`` is a deployment step), else :class:`StoreError` says so.
    """
    if url is None:
        url = (settings or load_settings()).discovery_url
    if url.strip().rstrip("/") in (MEMORY_URL.rstrip("/"), "memory:"):
        return InMemoryDiscoveryStore()
    try:
        backend = normalize_url(url).get_backend_name()
    except sa.exc.ArgumentError as exc:
        raise SettingsError(f"PYSTATOR_DISCOVERY_DATABASE_URL={url!r}: not a URL") from exc
    if is_sqlite(url):
        migrations.prepare_embedded(url)
        return SQLiteDiscoveryStore(url)
    if backend == "postgresql":
        if migrations.current(url) != migrations.head():
            raise StoreError(
                "the discovery database is not at the newest migration: run "
                f"'PYSTATOR_DATABASE_URL=<its url> pystator db upgrade' (backend {backend})"
            )
        return PostgresDiscoveryStore(url)
    raise SettingsError(
        f"PYSTATOR_DISCOVERY_DATABASE_URL: unsupported backend {backend!r} "
        f"(expected {MEMORY_URL}, sqlite:///… or postgresql://…)"
    )


__all__ = [
    "MAX_ENTITY_IDS",
    "MEMORY_URL",
    "CandidateStore",
    "DiscoveryStore",
    "DraftStore",
    "InMemoryDiscoveryStore",
    "ObservationStore",
    "PostgresDiscoveryStore",
    "SQLiteDiscoveryStore",
    "SqlDiscoveryStore",
    "create_discovery_store",
]
