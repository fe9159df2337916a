"""The HTTP API: the machine registry, API keys, the audit log, and listing indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

- ``machine_registry`` / ``machine_versions``: stored machines with immutable numbered versions;
  retiring sets ``retired_at`` and keeps every version.
- ``transition_history.machine_version``: the registry version that applied each transition
  (NULL for definitions loaded from files or code, and for rows written before this revision).
- ``api_keys``: keys stored as their sha256, with a role; ``audit_log``: one row per mutation
  through the HTTP API.
- ``worker_events`` indexes ``(status, id)``, ``(entity_id, id)`` and ``created_at``: operator
  listings newest first by status, by entity or in a time window, with keyset pagination.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Add the tables, the history column and the indexes."""
    op.create_table(
        "machine_registry",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("retired_at", nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_machine_registry"),
    )
    op.create_table(
        "machine_versions",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", _JSON, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("name", "version", name="pk_machine_versions"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        _ts("at"),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("target", sa.String(400), nullable=True),
        sa.Column("selection", _JSON, nullable=True),
        sa.Column("affected", sa.Integer(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    with op.batch_alter_table("transition_history") as batch:
        batch.add_column(sa.Column("machine_version", sa.Integer(), nullable=True))
    op.create_index("ix_worker_events_status_id", "worker_events", ["status", "id"])
    op.create_index("ix_worker_events_entity_id", "worker_events", ["entity_id", "id"])
    op.create_index("ix_worker_events_created_at", "worker_events", ["created_at"])


def downgrade() -> None:
    """Drop them (stored machines, keys and the audit log are lost)."""
    op.drop_index("ix_worker_events_created_at", table_name="worker_events")
    op.drop_index("ix_worker_events_entity_id", table_name="worker_events")
    op.drop_index("ix_worker_events_status_id", table_name="worker_events")
    with op.batch_alter_table("transition_history") as batch:
        batch.drop_column("machine_version")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
    op.drop_table("machine_versions")
    op.drop_table("machine_registry")
