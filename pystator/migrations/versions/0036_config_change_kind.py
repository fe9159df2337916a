"""Configuration changes from every door: ``audit_log.kind``.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-08

Until now the configuration-change feed (``GET /api/v1/events/stream``) picked its rows out of
the audit log by HTTP route and method, so only changes made through the HTTP API could be on
it. A change made with the command line or through the Python facade has no route, and the same
change must have the same kind whichever door made it: the function that makes the change now
records its kind (``machine.published``, ``api_key.revoked``, …) in ``kind``, and the feed is the
rows that have one. Other rows (event submissions, repairs, dry runs) leave it NULL.

Rows already there get the kind the feed gave them by their route, so a consumer resuming with
``Last-Event-ID`` sees the same history. ``ix_audit_log_config_feed`` is the feed's order over
those rows only (they are few among the submissions').
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | None = None
depends_on: str | None = None

#: (method or "" for any, route prefix, kind): the feed's rules before this revision, in order.
_KINDS = (
    ("DELETE", "/api/v1/machines", "machine.retired"),
    ("", "/api/v1/machines", "machine.published"),
    ("POST", "/api/v1/api-keys", "api_key.created"),
    ("DELETE", "/api/v1/api-keys", "api_key.revoked"),
    ("POST", "/api/v1/webhooks", "webhook.created"),
    ("PUT", "/api/v1/webhooks", "webhook.updated"),
    ("DELETE", "/api/v1/webhooks", "webhook.deleted"),
    ("", "/api/v1/settings", "settings.changed"),
)
#: Mutating routes under those prefixes that changed nothing (they were never on the feed).
_NOT_CHANGES = ("/api/v1/machines/validate", "/api/v1/webhooks/{webhook_id}/test")
_KEEP_UNCHANGED = "config.changed"


def upgrade() -> None:
    """Add the column, give old configuration changes their kind, add the feed's index."""
    op.add_column("audit_log", sa.Column("kind", sa.String(40), nullable=True))
    audit = sa.table(
        "audit_log",
        sa.column("method", sa.String),
        sa.column("route", sa.String),
        sa.column("status", sa.Integer),
        sa.column("kind", sa.String),
    )
    kind = sa.case(
        *(
            (
                sa.and_(audit.c.route.startswith(prefix), *([audit.c.method == m] if m else [])),
                sa.literal(name),
            )
            for m, prefix, name in _KINDS
        ),
        else_=sa.literal(_KEEP_UNCHANGED),
    )
    op.execute(
        sa.update(audit)
        .where(
            audit.c.method != "GET",
            audit.c.status < 400,
            sa.or_(*(audit.c.route.startswith(prefix) for _m, prefix, _k in _KINDS)),
            audit.c.route.not_in(_NOT_CHANGES),
        )
        .values(kind=kind)
    )
    op.create_index(
        "ix_audit_log_config_feed",
        "audit_log",
        ["commit_xid", "id"],
        postgresql_where=sa.text("kind IS NOT NULL"),
        sqlite_where=sa.text("kind IS NOT NULL"),
    )


def downgrade() -> None:
    """Drop the index and the column (the feed picks its rows by route again)."""
    op.drop_index("ix_audit_log_config_feed", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("kind")
