"""Fixtures the service tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from pystator.stores.sql.connections import dispose, fleet_engine


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """A fleet engine on a migrated database, once on PostgreSQL and once on SQLite."""
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    engine = fleet_engine(str(request.getfixturevalue(name)))
    yield engine
    dispose(engine)
