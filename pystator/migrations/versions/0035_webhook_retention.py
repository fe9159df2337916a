"""Retention of the webhook delivery log.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07

``ix_webhook_deliveries_status_delivered_at``: the retention pass picks the finished deliveries
of one status, oldest first (``delivered`` by ``delivered_at``; the few ``dropped`` and given-up
ones through the same index's status), as it does for the other tables
(:mod:`pystator.stores.sql.retention_queries`).
"""

from __future__ import annotations

from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the index."""
    op.create_index(
        "ix_webhook_deliveries_status_delivered_at",
        "webhook_deliveries",
        ["status", "delivered_at"],
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_webhook_deliveries_status_delivered_at", table_name="webhook_deliveries")
