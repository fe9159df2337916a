"""Running the Alembic migrations shipped in :mod:`pystator.migrations`, from Python.

``upgrade(url)`` brings any database (SQLite or PostgreSQL) to the newest schema; the
``pystator db …`` commands are thin wrappers over these functions. No ``alembic.ini`` is needed.
The documented import path is :mod:`pystator.migrations`.

Alembic is imported by the functions that run it, not with this module: every worker imports
this module (:func:`prepare_embedded`) but only an embedded SQLite one migrates, and Alembic
cost a tenth of a second of each start-up.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pystator.stores.sql.engine import (
    create_engine_from_url,
    is_sqlite,
    normalize_url,
    translate_errors,
)

if TYPE_CHECKING:
    from alembic.config import Config

#: The Alembic environment and versions (``pystator/migrations``).
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
HEAD = "head"
BASE = "base"


def alembic_config(url: str) -> Config:
    """An Alembic :class:`Config` for ``url`` pointing at the packaged migrations."""
    from alembic.config import Config

    config = Config(stdout=io.StringIO())
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = normalize_url(url).render_as_string(hide_password=False)
    return config


@contextmanager
def _translated() -> Iterator[None]:
    with translate_errors("migrations"):
        yield


def upgrade(url: str, revision: str = HEAD) -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the newest)."""
    from alembic import command

    with _translated():
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (``"base"`` drops every table)."""
    from alembic import command

    with _translated():
        command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None for an unmigrated database."""
    from alembic.runtime.migration import MigrationContext

    engine = create_engine_from_url(url)
    try:
        with _translated(), engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def prepare_embedded(url: str) -> None:
    """Create or upgrade the schema of an embedded SQLite database. PostgreSQL is left alone:
    there ``pystator db upgrade`` is a deployment step, not something every worker races to do."""
    if is_sqlite(url):
        upgrade(url)


def head() -> str:
    """The newest revision shipped with this version of pystator."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revision = script.get_current_head()
    if revision is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("no migrations found")
    return revision


def history() -> list[tuple[str, str | None, str]]:
    """Every shipped revision, oldest first: (revision, down_revision, message)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    rows = []
    for rev in script.walk_revisions():
        down = rev.down_revision if isinstance(rev.down_revision, str | None) else None
        rows.append((rev.revision, down, (rev.doc or "").splitlines()[0] if rev.doc else ""))
    return list(reversed(rows))


__all__ = [
    "BASE",
    "HEAD",
    "alembic_config",
    "current",
    "downgrade",
    "head",
    "history",
    "prepare_embedded",
    "upgrade",
]
