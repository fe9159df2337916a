"""Alembic environment for pystator (no ``alembic.ini``: configured by :mod:`pystator.stores.sql.migrator`).

The database URL arrives in ``config.attributes["url"]``, or an open connection in
``config.attributes["connection"]``; the target metadata is :data:`pystator.stores.sql.schema.metadata`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from pystator.stores.sql.engine import create_engine_from_url
from pystator.stores.sql.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of executing it (``--sql``)."""
    context.configure(
        url=config.attributes["url"],
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a connection (given, or opened from the URL)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine_from_url(config.attributes["url"])
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
