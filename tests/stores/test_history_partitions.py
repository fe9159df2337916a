"""Opt-in partitioning of ``transition_history`` by day on PostgreSQL, and retention by dropping days.

Conversion must keep every row and its id, new writes (from the real producer and processor)
must land in their day's partition with ids still increasing, re-running only adds missing days,
and a prune pass must drop whole old days, row-delete the rest, and keep the window; a dry run
changes nothing. SQLite is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pystator.cli import main
from pystator.config.settings import Settings
from pystator.fleet.retention import RetentionPolicy, prune
from pystator.stores.sql import partition_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.partition_queries import (
    DEFAULT,
    LEGACY,
    PartitioningUnsupportedError,
    day_name,
    partition_history,
)
from pystator.stores.sql.schema import transition_history
from tests.support.worker import MACHINE, make_rig

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TODAY = datetime(2026, 11, 27, tzinfo=UTC)
DEFAULTS = RetentionPolicy.from_settings(Settings())  # history: 90 days


@pytest.fixture
def engine(pg_migrated_url: str) -> Iterator[sa.Engine]:
    engine = fleet_engine(pg_migrated_url, pool_size=4)
    yield engine
    dispose(engine)


def add_history(conn: sa.Connection, entity: str, version: int, at: datetime) -> int:
    values = {
        "machine": MACHINE,
        "entity_id": entity,
        "version": version,
        "target_state": "open",
        "actions": [],
        "payload": {"v": version},
        "created_at": at,
    }
    statement = sa.insert(transition_history).values(values).returning(transition_history.c.id)
    return int(conn.execute(statement).scalar_one())


def rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        query = sa.select(transition_history).order_by(transition_history.c.id)
        return [tuple(r) for r in conn.execute(query)]


def ids(engine: sa.Engine) -> set[int]:
    return {r[0] for r in rows(engine)}


def partition_of(engine: sa.Engine, row_id: int) -> str:
    with engine.connect() as conn:
        query = sa.text("SELECT tableoid::regclass::text FROM transition_history WHERE id = :id")
        return str(conn.execute(query, {"id": row_id}).scalar_one())


def names(engine: sa.Engine) -> list[str]:
    with engine.begin() as conn:
        return [p.name for p in partition_queries.partitions(conn)]


def convert(engine: sa.Engine, today: datetime, days_ahead: int) -> partition_queries.Conversion:
    with engine.begin() as conn:
        return partition_history(conn, today, days_ahead)


def days(first: datetime, count: int) -> list[str]:
    return [day_name((first + timedelta(days=n)).date()) for n in range(count)]


def test_conversion_keeps_every_row_and_new_ids_keep_increasing(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for n in range(30):
            add_history(conn, f"e{n % 4}", n // 4 + 1, NOW - timedelta(days=n + 1, hours=3))
    before = rows(engine)

    result = convert(engine, NOW, 3)

    assert result.converted and result.legacy_rows == 30
    assert result.legacy_range == (TODAY - timedelta(days=30), TODAY)
    assert rows(engine) == before  # every column of every row, in id order
    assert names(engine) == [LEGACY, *days(TODAY, 4), DEFAULT]
    assert all(partition_of(engine, row[0]) == LEGACY for row in before)
    with engine.connect() as conn:  # the sequence now belongs to the new table (outlives legacy)
        owned = sa.text("SELECT pg_get_serial_sequence('transition_history', 'id')")
        assert conn.execute(owned).scalar_one() == "public.transition_history_id_seq"
    with engine.begin() as conn:
        today_id = add_history(conn, "new", 1, NOW)
        later_id = add_history(conn, "new", 2, NOW + timedelta(days=2))
        stray_id = add_history(conn, "new", 3, NOW + timedelta(days=40))  # no partition yet
    assert today_id > max(row[0] for row in before) and later_id > today_id
    assert partition_of(engine, today_id) == day_name(TODAY.date())
    assert partition_of(engine, later_id) == day_name((TODAY + timedelta(days=2)).date())
    assert partition_of(engine, stray_id) == DEFAULT  # written, not refused
    with engine.begin() as conn:
        # that day's rows are in DEFAULT: its partition is skipped, not an error
        assert partition_queries.create_days(conn, NOW + timedelta(days=40), 0) == []


def test_rows_of_today_keep_the_legacy_partition_open_until_tomorrow(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_history(conn, "a", 1, NOW - timedelta(hours=1))
    result = convert(engine, NOW, 1)
    assert result.legacy_range == (TODAY, TODAY + timedelta(days=1))
    assert names(engine) == [LEGACY, day_name((TODAY + timedelta(days=1)).date()), DEFAULT]


def test_fleet_writes_after_conversion_land_in_their_days_partition(pg_migrated_url: str) -> None:
    rig = make_rig(pg_migrated_url)
    try:
        before = rig.submit("a", "open")
        rig.processor.drain()
        assert rig.event(before).status == "completed"
        rig.clock.advance(86400)  # the conversion happens the day after that write
        convert(rig.engine, rig.clock(), 2)
        rig.submit("a", "bump")
        rig.submit("a", "close")
        rig.processor.drain()
        history = rig.history("a")
        assert [h.version for h in history] == [1, 2, 3]
        with rig.engine.connect() as conn:
            query = sa.text(
                "SELECT id, tableoid::regclass::text FROM transition_history ORDER BY id"
            )
            placed = conn.execute(query).all()
        today = day_name(rig.clock().date())
        assert [where for _, where in placed] == [LEGACY, today, today]
        assert [row_id for row_id, _ in placed] == sorted(row_id for row_id, _ in placed)
        assert rig.record("a").version == 3
    finally:
        dispose(rig.engine)


def test_rerunning_the_command_only_adds_missing_days(
    pg_migrated_url: str, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with engine.begin() as conn:
        add_history(conn, "a", 1, datetime.now(UTC) - timedelta(days=3))
    before = rows(engine)
    command = ["db", "partition-history", "--url", pg_migrated_url, "--days-ahead", "2"]
    assert main(command) == 0
    assert "now partitioned by day" in capsys.readouterr().out
    first = names(engine)
    assert len(first) == 5  # legacy, today and two days ahead, default
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "already partitioned" in out and "none (all present)" in out
    assert names(engine) == first
    assert main([*command[:-1], "4"]) == 0
    assert len(names(engine)) == 7
    assert rows(engine) == before


def test_prune_drops_whole_old_days_and_keeps_the_window(engine: sa.Engine) -> None:
    first_day = TODAY - timedelta(days=95)
    convert(engine, first_day, 6)  # daily partitions for days -95 .. -89
    cutoff = NOW - timedelta(days=90)  # day -90 at noon: that day is cut through
    with engine.begin() as conn:
        legacy = add_history(conn, "a", 1, NOW - timedelta(days=200))
        old_days = [add_history(conn, "b", n + 1, NOW - timedelta(days=95 - n)) for n in range(5)]
        cut_old = add_history(conn, "c", 1, cutoff - timedelta(hours=2))
        cut_new = add_history(conn, "c", 2, cutoff + timedelta(hours=2))
        last_day = add_history(conn, "c", 3, NOW - timedelta(days=89))
        in_default = add_history(conn, "d", 1, NOW - timedelta(days=30))
    dropped = days(first_day, 5)
    before_names = names(engine)
    everything = ids(engine)
    assert partition_of(engine, in_default) == DEFAULT
    assert partition_of(engine, cut_old) == day_name((TODAY - timedelta(days=90)).date())

    dry = prune(engine, DEFAULTS, dry_run=True, now=NOW)
    assert dry.dropped_partitions == dropped
    assert dry.removed["transition_history"] == 7  # legacy, five whole days, one of the cut day
    assert ids(engine) == everything and names(engine) == before_names

    report = prune(engine, replace(DEFAULTS, pause_seconds=0), now=NOW)
    assert report.dropped_partitions == dropped
    assert report.removed["transition_history"] == 7
    assert report.created_partitions == days(TODAY, 8)
    assert ids(engine) == {cut_new, last_day, in_default}
    assert not {legacy, cut_old, *old_days} & ids(engine)
    remaining = names(engine)
    assert not set(dropped) & set(remaining)
    assert remaining[:3] == [LEGACY, *days(TODAY - timedelta(days=90), 2)]

    again = prune(engine, replace(DEFAULTS, pause_seconds=0), now=NOW)
    assert again.dropped_partitions == [] and again.removed["transition_history"] == 0
    assert again.created_partitions == []


def test_with_an_archive_rows_are_archived_then_emptied_days_dropped(
    engine: sa.Engine, tmp_path: Path
) -> None:
    first_day = TODAY - timedelta(days=100)
    convert(engine, first_day, 1)
    with engine.begin() as conn:
        gone = {add_history(conn, "a", n + 1, NOW - timedelta(days=100 - n)) for n in range(2)}
    policy = replace(DEFAULTS, pause_seconds=0, archive_dir=tmp_path)
    report = prune(engine, policy, now=NOW)
    assert report.dropped_partitions == days(first_day, 2)
    assert report.removed["transition_history"] == 2  # counted once: deleted, then dropped empty
    archived = (tmp_path / "transition_history-2026-11-27.jsonl").read_text().splitlines()
    assert len(archived) == 2
    assert not gone & ids(engine)


def test_sqlite_is_refused(sqlite_migrated_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "partition-history", "--url", sqlite_migrated_url]) == 2
    assert "needs PostgreSQL" in capsys.readouterr().out
    engine = fleet_engine(sqlite_migrated_url)
    try:
        with engine.begin() as conn, pytest.raises(PartitioningUnsupportedError):
            partition_history(conn, NOW, 1)
        with engine.connect() as conn:
            assert not partition_queries.is_partitioned(conn)
        report = prune(engine, DEFAULTS, now=NOW)  # the row-delete path, as before
        assert report.dropped_partitions == [] and report.created_partitions == []
    finally:
        dispose(engine)


def test_prune_command_reports_the_days_it_drops(
    pg_migrated_url: str, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    first_day = partition_queries.day_start(datetime.now(UTC)) - timedelta(days=100)
    convert(engine, first_day, 1)
    old = days(first_day, 2)
    assert main(["prune", "--dry-run", "--url", pg_migrated_url]) == 0
    assert f"would drop history partitions: {', '.join(old)}" in capsys.readouterr().out
    assert names(engine)[1:3] == old
    assert main(["prune", "--url", pg_migrated_url]) == 0
    out = capsys.readouterr().out
    assert f"dropped history partitions: {', '.join(old)}" in out
    assert "created history partitions: " in out
    assert not set(old) & set(names(engine))


def test_a_busy_table_makes_the_command_give_up_unchanged(
    pg_migrated_url: str, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with engine.connect() as holder:
        add_history(holder, "a", 1, NOW)  # an open writer transaction holds the table
        command = ["db", "partition-history", "--url", pg_migrated_url, "--lock-timeout", "0.2"]
        assert main(command) != 0
        assert "lock timeout" in capsys.readouterr().err
        holder.rollback()
    with engine.connect() as conn:
        assert not partition_queries.is_partitioned(conn)
    assert main(command) == 0
    assert names(engine)[0] == LEGACY
