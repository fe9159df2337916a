"""Apply-data events in worker_events.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07

Reserved in the chain for apply-data; it changes no table until that work lands.
"""

from __future__ import annotations

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Nothing yet: the revision keeps its place in the chain."""


def downgrade() -> None:
    """Nothing to undo."""
