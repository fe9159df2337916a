"""Initial schema: entity states, history, worker events (queue, timers, dead letters), outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Mirrors :mod:`pystator.stores.sql.schema` as it stood at this revision (the migration test checks
that no drift exists). Written out by hand so later schema edits never rewrite history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PENDING = sa.text("status = 'pending'")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column[object]:
    return sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True)


def _pending_index(name: str, table: str, *columns: str) -> None:
    op.create_index(name, table, list(columns), postgresql_where=PENDING, sqlite_where=PENDING)


def _entity_states() -> None:
    op.create_table(
        "entity_states",
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("context", JSON_TYPE, nullable=False),
        sa.Column("entries", JSON_TYPE, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("machine", "entity_id", name="pk_entity_states"),
    )


def _transition_history() -> None:
    op.create_table(
        "transition_history",
        _id(),
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("source_state", sa.Text(), nullable=True),
        sa.Column("target_state", sa.Text(), nullable=False),
        sa.Column("trigger", sa.String(200), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("origin", sa.String(16), nullable=False, server_default="direct"),
        sa.Column("actions", JSON_TYPE, nullable=False),
        sa.Column("payload", JSON_TYPE, nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_transition_history"),
        sa.UniqueConstraint(
            "machine",
            "entity_id",
            "version",
            name="uq_transition_history_machine_entity_id_version",
        ),
    )


def _worker_events() -> None:
    op.create_table(
        "worker_events",
        _id(),
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(200), nullable=False),
        sa.Column("context", JSON_TYPE, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("origin", sa.String(16), nullable=False, server_default="submit"),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("duplicate_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="5"),
        _ts("fires_at"),
        sa.Column("timer_key", sa.String(400), nullable=True),
        sa.Column("timer_state", sa.Text(), nullable=True),
        sa.Column("timer_entry", sa.BigInteger(), nullable=True),
        sa.Column("errors", JSON_TYPE, nullable=False),
        sa.Column("outcome", JSON_TYPE, nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("completed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_worker_events"),
        sa.UniqueConstraint(
            "machine", "idempotency_key", name="uq_worker_events_machine_idempotency_key"
        ),
    )
    _pending_index("ix_worker_events_pending_due", "worker_events", "fires_at")
    _pending_index("ix_worker_events_pending_entity", "worker_events", "machine", "entity_id", "id")
    op.create_index("ix_worker_events_status_updated", "worker_events", ["status", "updated_at"])


def _action_outbox() -> None:
    op.create_table(
        "action_outbox",
        _id(),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("entity_version", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("params", JSON_TYPE, nullable=False),
        sa.Column("context", JSON_TYPE, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("errors", JSON_TYPE, nullable=False),
        _ts("available_at"),
        _ts("created_at"),
        _ts("completed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_action_outbox"),
    )
    _pending_index("ix_action_outbox_pending_available", "action_outbox", "available_at")


def upgrade() -> None:
    """Create every table and index."""
    _entity_states()
    _transition_history()
    _worker_events()
    _action_outbox()


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_index("ix_action_outbox_pending_available", table_name="action_outbox")
    op.drop_table("action_outbox")
    for name in (
        "ix_worker_events_status_updated",
        "ix_worker_events_pending_entity",
        "ix_worker_events_pending_due",
    ):
        op.drop_index(name, table_name="worker_events")
    op.drop_table("worker_events")
    op.drop_table("transition_history")
    op.drop_table("entity_states")
