"""The commit-safe transition feed and webhooks.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07

Reserved in the chain for the transition stream and webhooks; it changes no table until that work lands.
"""

from __future__ import annotations

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Nothing yet: the revision keeps its place in the chain."""


def downgrade() -> None:
    """Nothing to undo."""
