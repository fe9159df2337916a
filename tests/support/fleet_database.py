"""The fleet tests' database set-up and counts: schema, the action log table, event statuses."""

from __future__ import annotations

import sqlalchemy as sa

# ---------------------------------------------------------------------------- database helpers


def create_schema(url: str) -> None:
    """Bring the database to the current schema (Alembic when available, else the metadata)."""
    try:
        from pystator.stores.sql.migrator import upgrade
    except ImportError:
        upgrade = None
    if upgrade is not None:
        upgrade(url)
        return
    from pystator.stores.sql.schema import metadata

    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


ACTION_LOG_DDL = """
CREATE TABLE IF NOT EXISTS action_log (
    id BIGSERIAL PRIMARY KEY,
    token TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    event_id BIGINT,
    action TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def create_action_log(engine: sa.Engine) -> None:
    """The table the fleet app's actions append ``(token, entity, event)`` rows to."""
    with engine.begin() as conn:
        conn.execute(sa.text(ACTION_LOG_DDL))


def status_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, count(*) FROM worker_events GROUP BY status"))
        return {str(s): int(n) for s, n in rows}


def pending_count(engine: sa.Engine) -> int:
    return status_counts(engine).get("pending", 0)
