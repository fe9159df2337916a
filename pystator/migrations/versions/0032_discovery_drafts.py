"""Discovery drafts.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07

Reserved in the chain for the discovery drafts; it changes no table until that work lands.
"""

from __future__ import annotations

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Nothing yet: the revision keeps its place in the chain."""


def downgrade() -> None:
    """Nothing to undo."""
