"""Apply-data events in worker_events: a ``kind`` column.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07

A queued apply-data (a trigger-less data update routed by ``when`` rules) is a row of
``worker_events`` like a named event, told apart by ``kind`` (``event`` — the default, so every
existing row and every existing insert stays a named event — or ``apply_data``). One table on
purpose: per-entity order, exactly-once completion, retries, dead letters, idempotency keys and
the relay all key on this table's rows, so an apply-data interleaved with named events of the
same entity is applied in submission order by the same claim. Adding a column with a constant
default rewrites nothing on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``worker_events.kind``."""
    op.add_column(
        "worker_events",
        sa.Column("kind", sa.String(16), nullable=False, server_default="event"),
    )


def downgrade() -> None:
    """Drop it (queued apply-data rows would read as named events: delete them first)."""
    with op.batch_alter_table("worker_events") as batch:
        batch.drop_column("kind")
