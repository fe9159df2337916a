"""Replay context and shadow-mode tables.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07

Reserved in the chain for replay and shadow mode; it changes no table until that work lands.
"""

from __future__ import annotations

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Nothing yet: the revision keeps its place in the chain."""


def downgrade() -> None:
    """Nothing to undo."""
