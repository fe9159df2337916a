"""Indexes the retention pruner walks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

- ``ix_transition_history_created_at``: the oldest history rows, without a scan of the table.
- ``ix_action_outbox_status_completed``: done and discarded actions by when they finished.

``worker_events`` (``ix_worker_events_status_updated``), ``audit_log`` (``ix_audit_log_at``),
``idempotency_conflicts`` (``ix_idempotency_conflicts_created_at``) and ``event_rollups`` (its
primary key starts with ``minute``) already had theirs. On a large PostgreSQL table, build these
with ``CREATE INDEX CONCURRENTLY`` by hand before upgrading if the write lock of a plain
``CREATE INDEX`` is too long for you; the migration then finds them and skips them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_INDEXES = (
    ("ix_transition_history_created_at", "transition_history", ["created_at"]),
    ("ix_action_outbox_status_completed", "action_outbox", ["status", "completed_at"]),
)


def upgrade() -> None:
    """Create the indexes (those that exist already are left alone)."""
    existing = sa.inspect(op.get_bind())
    for name, table, columns in _INDEXES:
        if name not in {ix["name"] for ix in existing.get_indexes(table)}:
            op.create_index(name, table, columns)


def downgrade() -> None:
    """Drop them."""
    for name, table, _columns in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
