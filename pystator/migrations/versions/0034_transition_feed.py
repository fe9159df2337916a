"""The commit-safe transition feed and webhooks.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07

``commit_xid`` on ``transition_history`` and ``audit_log``: the id of the transaction that wrote
the row. On PostgreSQL its default is ``pg_current_xact_id()`` (rows already there get 0: they
are older than any running transaction); on SQLite it is 0 (writers are serial, so ids are
already in commit order). The feeds read in ``(commit_xid, id)`` order, and on PostgreSQL only
below the oldest running transaction (``pg_snapshot_xmin``): a row that commits later always
sorts after every row a reader has seen, so a saved cursor never skips one.

``webhooks`` (operator subscriptions) and ``webhook_deliveries`` (one row per notice: the
delivery log; the POST runs from ``action_outbox``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | None = None
depends_on: str | None = None

_FEEDS = ("transition_history", "audit_log")
#: The writing transaction's full (64-bit, never wrapping) id.
_PG_XID = "(pg_current_xact_id()::text)::bigint"

_json = sa.JSON().with_variant(JSONB(), "postgresql")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Add the columns, their indexes and the webhook tables."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _FEEDS:
        op.add_column(
            table,
            sa.Column("commit_xid", sa.BigInteger(), nullable=False, server_default="0"),
        )
        if postgres:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN commit_xid SET DEFAULT {_PG_XID}")
        op.create_index(f"ix_{table}_commit_xid_id", table, ["commit_xid", "id"])
    op.create_table(
        "webhooks",
        sa.Column("id", _id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("kinds", _json, nullable=False),
        sa.Column("machine", sa.String(200), nullable=True),
        sa.Column("states", _json, nullable=False),
        sa.Column("dwell_seconds", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _id, autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("source_key", sa.String(600), nullable=False),
        sa.Column("payload", _json, nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint(
            "webhook_id",
            "kind",
            "source_key",
            name="uq_webhook_deliveries_webhook_id_kind_source_key",
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_webhook_id_id", "webhook_deliveries", ["webhook_id", "id"]
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_webhook_deliveries_webhook_id_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    for table in reversed(_FEEDS):
        op.drop_index(f"ix_{table}_commit_xid_id", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("commit_xid")
