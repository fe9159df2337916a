"""Hardening: idempotency fingerprints and conflicts, failing timers, worker heartbeats.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

- ``worker_events.fingerprint``: the same idempotency key with a different event is a conflict
  (refused and recorded in ``idempotency_conflicts``), not a silent duplicate. Keyed events
  stored before this revision have no fingerprint; a repeat of their key counts as a duplicate.
- ``worker_timers.attempts`` / ``errors`` / ``dead_at``: a timer that cannot fire is retried
  with backoff and finally set aside with its errors, instead of blocking every other timer.
- ``worker_heartbeats``: one row per worker process, for ``pystator health`` and operators.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Add the columns and tables."""
    with op.batch_alter_table("worker_events") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
    with op.batch_alter_table("worker_timers") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("errors", _JSON, nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(_ts("dead_at", nullable=True))
    op.create_table(
        "idempotency_conflicts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_conflicts"),
    )
    op.create_index("ix_idempotency_conflicts_created_at", "idempotency_conflicts", ["created_at"])
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(200), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        _ts("started_at"),
        _ts("beat_at"),
        _ts("progress_at"),
        sa.Column("in_flight", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("applied", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("info", _JSON, nullable=False),
        _ts("stopped_at", nullable=True),
        sa.PrimaryKeyConstraint("worker_id", name="pk_worker_heartbeats"),
    )
    op.create_index("ix_worker_heartbeats_host", "worker_heartbeats", ["host"])


def downgrade() -> None:
    """Drop them (conflict records and heartbeats are lost; timers set aside fire again)."""
    op.drop_index("ix_worker_heartbeats_host", table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
    op.drop_index("ix_idempotency_conflicts_created_at", table_name="idempotency_conflicts")
    op.drop_table("idempotency_conflicts")
    with op.batch_alter_table("worker_timers") as batch:
        batch.drop_column("dead_at")
        batch.drop_column("errors")
        batch.drop_column("attempts")
    with op.batch_alter_table("worker_events") as batch:
        batch.drop_column("fingerprint")
