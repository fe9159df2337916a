"""The database schema operations of ``pystator db …``: migrations, and the opt-in partitioning of
``transition_history`` by day on PostgreSQL.

The migrations' Python API is :mod:`pystator.stores.sql.migrator` (documented as
:mod:`pystator.migrations`); the partitioning SQL is :mod:`pystator.stores.sql.partition_queries`.
"""

from __future__ import annotations

from sqlalchemy import make_url

from pystator.fsm_core.clock import Clock, utc_now
from pystator.stores.sql.connections import dispose, transaction
from pystator.stores.sql.engine import create_engine_from_url, translate_errors
from pystator.stores.sql.migrator import BASE, HEAD, current, downgrade, head, history, upgrade
from pystator.stores.sql.partition_queries import (
    LEGACY as LEGACY_PARTITION,
)
from pystator.stores.sql.partition_queries import (
    Conversion,
    PartitioningUnsupportedError,
    set_lock_timeout,
)
from pystator.stores.sql.partition_queries import (
    partition_history as convert_history,
)


def printable_url(url: str) -> str:
    """``url`` with its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def partition_history(
    url: str, *, days_ahead: int, lock_timeout_seconds: float, clock: Clock = utc_now
) -> Conversion:
    """Partition ``transition_history`` by day (or add the missing days when it already is),
    giving up when the table's lock is not granted within ``lock_timeout_seconds``.

    Raises :class:`PartitioningUnsupportedError` on a database that is not PostgreSQL.
    """
    engine = create_engine_from_url(url)
    try:
        if engine.dialect.name != "postgresql":
            raise PartitioningUnsupportedError(
                f"{printable_url(url)}: history partitioning needs PostgreSQL, "
                f"not {engine.dialect.name}"
            )
        with translate_errors("partition-history"), transaction(engine) as conn:
            set_lock_timeout(conn, lock_timeout_seconds)
            return convert_history(conn, clock(), days_ahead)
    finally:
        dispose(engine)


__all__ = [
    "BASE",
    "HEAD",
    "LEGACY_PARTITION",
    "Conversion",
    "PartitioningUnsupportedError",
    "current",
    "downgrade",
    "head",
    "history",
    "partition_history",
    "printable_url",
    "upgrade",
]
