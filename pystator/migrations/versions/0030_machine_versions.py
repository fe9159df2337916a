"""Machine version policy and the version each entity runs (changing a live machine safely).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07

* ``machine_versions.upgrade_policy`` (``auto`` or ``pinned``, default ``auto``): chosen when a
  version is published. Under the current version's ``pinned`` policy an entity keeps applying
  events with the version it is on until it is migrated; under ``auto`` it moves to the current
  version on its next event.
* ``entity_states.machine_version`` (nullable): the registry version the entity's last write
  was made with (NULL for entities written with a definition from a file or from code).

Both are additions (a nullable column, a column with a server default): nothing is rewritten
on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the columns."""
    op.add_column(
        "machine_versions",
        sa.Column("upgrade_policy", sa.String(16), nullable=False, server_default="auto"),
    )
    op.add_column("entity_states", sa.Column("machine_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("entity_states") as batch:
        batch.drop_column("machine_version")
    with op.batch_alter_table("machine_versions") as batch:
        batch.drop_column("upgrade_policy")
