"""Discovery: observed states, built candidate machines and drafts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

- ``discovery_observations``: one row per observed state of an entity (``id`` is the arrival
  order; ``(machine, source, source_event_id)`` is unique so a re-sent observation is a no-op),
  read in ``(machine, entity_id, observed_at, id)`` order through ``ix_discovery_observations_order``.
- ``discovery_candidates``: candidate machines inferred from them, numbered per machine.
- ``discovery_drafts``: saved discovery scopes (entities, thresholds, mode, manual edges).

New tables only: nothing existing is touched, so the upgrade takes no lock on busy tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the three tables and their indexes."""
    op.create_table(
        "discovery_observations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("state", sa.String(200), nullable=False),
        _ts("observed_at"),
        sa.Column("trigger", sa.String(200), nullable=True),
        sa.Column("previous_state", sa.String(200), nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("source_event_id", sa.String(255), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_discovery_observations"),
        sa.UniqueConstraint(
            "machine",
            "source",
            "source_event_id",
            name="uq_discovery_observations_machine_source_source_event_id",
        ),
    )
    op.create_index(
        "ix_discovery_observations_order",
        "discovery_observations",
        ["machine", "entity_id", "observed_at", "id"],
    )
    op.create_table(
        "discovery_candidates",
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", _JSON, nullable=False),
        sa.Column("edges", _JSON, nullable=False),
        sa.Column("summary", _JSON, nullable=False),
        sa.Column("draft_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("machine", "version", name="pk_discovery_candidates"),
    )
    op.create_table(
        "discovery_drafts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("machine", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("entity_ids", _JSON, nullable=False),
        sa.Column("min_edge_count", sa.Integer(), nullable=False),
        sa.Column("min_confidence", sa.Float(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("edge_selection", _JSON, nullable=False),
        sa.Column("last_built_version", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_discovery_drafts"),
    )
    op.create_index("ix_discovery_drafts_machine", "discovery_drafts", ["machine", "id"])


def downgrade() -> None:
    """Drop them (observations, candidates and drafts are lost)."""
    op.drop_index("ix_discovery_drafts_machine", table_name="discovery_drafts")
    op.drop_table("discovery_drafts")
    op.drop_table("discovery_candidates")
    op.drop_index("ix_discovery_observations_order", table_name="discovery_observations")
    op.drop_table("discovery_observations")
