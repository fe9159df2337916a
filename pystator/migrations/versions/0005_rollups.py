"""Per-minute event counts for charts, and when an idempotency key was last repeated.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

- ``event_rollups``: events applied / rejected / stale / retried / dead per minute and machine,
  added up by the workers from what they committed (flushed with each heartbeat). The dashboard's
  charts and the per-minute stats read this small table, not ``worker_events``, so they survive
  a restart and outlive the events retention removes.
- ``worker_events.last_duplicate_at``: when the event's idempotency key was last submitted again
  with the same content, with a partial index: the dashboard's "recent duplicate hits" without a
  scan of the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the rollup table, the column and its index."""
    op.create_table(
        "event_rollups",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "machine", "outcome", name="pk_event_rollups"),
    )
    with op.batch_alter_table("worker_events") as batch:
        batch.add_column(sa.Column("last_duplicate_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_worker_events_last_duplicate_at",
        "worker_events",
        ["last_duplicate_at"],
        postgresql_where=sa.text("last_duplicate_at IS NOT NULL"),
        sqlite_where=sa.text("last_duplicate_at IS NOT NULL"),
    )


def downgrade() -> None:
    """Drop them (the per-minute counts are lost)."""
    op.drop_index("ix_worker_events_last_duplicate_at", table_name="worker_events")
    with op.batch_alter_table("worker_events") as batch:
        batch.drop_column("last_duplicate_at")
    op.drop_table("event_rollups")
