"""``pystator.migrations``: the Alembic environment and versions shipped inside the package, and
(the documented import path of) their Python API, :mod:`pystator.stores.sql.migrator`."""

from __future__ import annotations

from pystator.stores.sql.migrator import (
    BASE,
    HEAD,
    alembic_config,
    current,
    downgrade,
    head,
    history,
    prepare_embedded,
    upgrade,
)

__all__ = [
    "BASE",
    "HEAD",
    "alembic_config",
    "current",
    "downgrade",
    "head",
    "history",
    "prepare_embedded",
    "upgrade",
]
