"""Machine version policy and migrations (changing a live machine safely).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07

Reserved in the chain for the compatibility work; it changes no table until that work lands.
"""

from __future__ import annotations

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Nothing yet: the revision keeps its place in the chain."""


def downgrade() -> None:
    """Nothing to undo."""
