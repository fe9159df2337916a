"""Replay context and shadow-mode tables.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07

``transition_history.guard_context`` (nullable JSON): the context the guards saw when the
transition was applied, so ``pystator replay`` can re-run a candidate exactly. ``machine_shadows``
(a candidate evaluated beside a machine's active version) and ``shadow_diffs`` (their bounded
difference groups). Adding a nullable column without a default rewrites nothing on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | None = None
depends_on: str | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Add the column and the two tables."""
    op.add_column("transition_history", sa.Column("guard_context", _JSON, nullable=True))
    op.create_table(
        "machine_shadows",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("definition", _JSON, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("matched", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("mismatched", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("promoted_version", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("ended_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_machine_shadows"),
    )
    op.create_index("ix_machine_shadows_machine", "machine_shadows", ["machine", "status"])
    op.create_table(
        "shadow_diffs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("shadow_id", sa.BigInteger(), nullable=False),
        sa.Column("source_state", sa.Text(), nullable=False),
        sa.Column("trigger", sa.String(200), nullable=False),
        sa.Column("active_target", sa.Text(), nullable=False),
        sa.Column("shadow_target", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("examples", _JSON, nullable=False),
        _ts("first_seen"),
        _ts("last_seen"),
        sa.PrimaryKeyConstraint("id", name="pk_shadow_diffs"),
        sa.UniqueConstraint(
            "shadow_id",
            "source_state",
            "trigger",
            "active_target",
            "shadow_target",
            "kind",
            name="uq_shadow_diffs_group",
        ),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("shadow_diffs")
    op.drop_index("ix_machine_shadows_machine", table_name="machine_shadows")
    op.drop_table("machine_shadows")
    with op.batch_alter_table("transition_history") as batch:
        batch.drop_column("guard_context")
