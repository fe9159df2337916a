"""The trace context stored with an event, an outbox action and an armed timer.

Revision ID: 0029
Revises: 0006
Create Date: 2026-12-07

``traceparent`` (W3C trace context, nullable) on ``worker_events``, ``action_outbox`` and
``worker_timers``: with OpenTelemetry installed, a worker's apply span joins the trace of the
submission however the event reached it (a nudge, the relay, a timer firing), and an action's
span joins its apply span's. Adding a nullable column without a default rewrites nothing on
PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_TABLES = ("worker_events", "action_outbox", "worker_timers")
_LENGTH = 100


def upgrade() -> None:
    """Add the columns."""
    for table in _TABLES:
        op.add_column(table, sa.Column("traceparent", sa.String(_LENGTH), nullable=True))


def downgrade() -> None:
    """Drop them."""
    for table in reversed(_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("traceparent")
