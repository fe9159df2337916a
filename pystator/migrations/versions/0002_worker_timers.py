"""Armed timers get their own table (``worker_timers``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Before this revision a timer was a future ``worker_events`` row, which held back the entity's
later events until it fired. A timer row now becomes an event only when it fires. Timer events
already pending in ``worker_events`` are left as they are and still fire.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create ``worker_timers`` and its due-time index."""
    op.create_table(
        "worker_timers",
        sa.Column("timer_id", sa.Text(), nullable=False),
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(200), nullable=False),
        sa.Column("timer_key", sa.String(400), nullable=False),
        sa.Column("timer_state", sa.Text(), nullable=False),
        sa.Column("timer_entry", sa.BigInteger(), nullable=False),
        _ts("due_at"),
        _ts("handed_at", nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("timer_id", name="pk_worker_timers"),
    )
    op.create_index("ix_worker_timers_due_at", "worker_timers", ["due_at"])


def downgrade() -> None:
    """Drop ``worker_timers`` (armed timers are lost: fire or cancel them first)."""
    op.drop_index("ix_worker_timers_due_at", table_name="worker_timers")
    op.drop_table("worker_timers")
