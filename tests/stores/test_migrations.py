"""The packaged Alembic migrations: upgrade, downgrade, re-upgrade, and no drift from schema.py."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pystator.cli import main
from pystator.stores.sql import migrator
from pystator.stores.sql.engine import create_engine_from_url
from pystator.stores.sql.schema import metadata

pytestmark = pytest.mark.integration

TABLES = {
    "entity_states",
    "transition_history",
    "worker_events",
    "action_outbox",
    "worker_timers",
    "idempotency_conflicts",
    "event_rollups",
    "worker_heartbeats",
    "machine_registry",
    "machine_versions",
    "api_keys",
    "audit_log",
    "discovery_observations",
    "discovery_candidates",
    "discovery_drafts",
    "machine_shadows",
    "shadow_diffs",
    "webhooks",
    "webhook_deliveries",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


def _tables(url: str) -> set[str]:
    engine = create_engine_from_url(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _drift(url: str) -> list[object]:
    engine = create_engine_from_url(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_without_drift(empty_url: str) -> None:
    assert migrator.current(empty_url) is None
    migrator.upgrade(empty_url)
    assert migrator.current(empty_url) == migrator.head()
    assert _tables(empty_url) == TABLES
    assert _drift(empty_url) == []

    migrator.downgrade(empty_url, migrator.BASE)
    assert migrator.current(empty_url) is None
    assert _tables(empty_url) == set()

    migrator.upgrade(empty_url)
    assert _drift(empty_url) == []


def test_history_lists_the_initial_revision() -> None:
    revisions = migrator.history()
    assert revisions[0][0] == "0001"
    assert revisions[0][1] is None
    assert revisions[-1][0] == migrator.head()


def test_db_commands(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "current", "--url", sqlite_url]) == 0
    assert "not migrated" in capsys.readouterr().out
    assert main(["db", "upgrade", "--url", sqlite_url]) == 0
    assert main(["db", "current", "--url", sqlite_url]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["db", "history"]) == 0
    assert f"{migrator.head()} (head)" in capsys.readouterr().out
    assert main(["db", "downgrade", "base", "--url", sqlite_url]) == 0
    assert migrator.current(sqlite_url) is None


def test_unreachable_database_is_a_store_error() -> None:
    from pystator.fsm_core.errors import StoreUnavailableError

    with pytest.raises(StoreUnavailableError) as info:
        migrator.current("postgresql://postgres@127.0.0.1:1/nothing")
    assert info.value.__cause__ is not None


def test_migrated_fixtures_are_at_head(pg_migrated_url: str, sqlite_migrated_url: str) -> None:
    assert migrator.current(pg_migrated_url) == migrator.head()
    assert migrator.current(sqlite_migrated_url) == migrator.head()


def test_0036_gives_the_configuration_changes_already_recorded_their_kind(
    empty_url: str,
) -> None:
    """Rows written before 0036 keep the kind the feed gave them by their route, so a
    consumer resuming the configuration stream sees the same history; other rows get none."""
    migrator.upgrade(empty_url, "0035")
    old = [  # (method, route, status) -> the kind expected
        (("POST", "/api/v1/machines", 201), "machine.published"),
        (("DELETE", "/api/v1/machines/{name}", 200), "machine.retired"),
        (("POST", "/api/v1/api-keys", 201), "api_key.created"),
        (("DELETE", "/api/v1/api-keys/{key_id}", 200), "api_key.revoked"),
        (("PUT", "/api/v1/webhooks/{webhook_id}", 200), "webhook.updated"),
        (("POST", "/api/v1/machines/validate", 200), None),
        (("POST", "/api/v1/webhooks/{webhook_id}/test", 202), None),
        (("POST", "/api/v1/events", 201), None),
        (("GET", "/api/v1/machines", 200), None),
    ]
    engine = create_engine_from_url(empty_url)
    try:
        with engine.begin() as conn:
            for (method, route, status), _kind in old:
                conn.execute(
                    sa.text(
                        "INSERT INTO audit_log (at, principal, role, method, route, status) "
                        "VALUES (CURRENT_TIMESTAMP, 'p', 'admin', :m, :r, :s)"
                    ),
                    {"m": method, "r": route, "s": status},
                )
        migrator.upgrade(empty_url)
        with engine.connect() as conn:
            kinds = conn.execute(sa.text("SELECT kind FROM audit_log ORDER BY id")).scalars()
            assert list(kinds) == [kind for _row, kind in old]
    finally:
        engine.dispose()
    assert _drift(empty_url) == []
