"""The documented store protocol on the SQL and Redis stores (sync and async), driven through
the Orchestrator, and ``schedule`` on the Redis scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pystator import GuardRegistry, Orchestrator, StateMachine, StateStore
from pystator.schedulers.base import is_scheduled_by_hand
from pystator.schedulers.redis_scheduler import RedisScheduler
from pystator.stores import create_store

pytestmark = pytest.mark.integration

URL_FIXTURES = {
    "sqlite": "sqlite_migrated_url",
    "postgresql": "pg_migrated_url",
    "redis": "redis_url",
}
CONFIG = {
    "meta": {"machine_name": "orders"},
    "states": [
        {"name": "PENDING", "type": "initial"},
        {"name": "OPEN", "type": "stable"},
        {"name": "FILLED", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "ack", "source": "PENDING", "dest": "OPEN"},
        {"trigger": "fill", "source": "OPEN", "dest": "FILLED", "guards": ["full"]},
    ],
}


def _machine() -> StateMachine:
    guards = GuardRegistry()
    guards.register("full", lambda ctx: ctx.get("qty", 0) >= 10)
    machine = StateMachine.from_dict(CONFIG)
    machine.bind_guards(guards)
    return machine


@pytest.fixture(params=sorted(URL_FIXTURES))
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(URL_FIXTURES[request.param]))


@pytest.fixture
def store(url: str) -> Iterator[Any]:
    instance = create_store(url)
    yield instance
    instance.close()


def test_sync_store_documented_calls_through_the_orchestrator(store: Any) -> None:
    assert isinstance(store, StateStore)
    orchestrator = Orchestrator(machine=_machine(), store=store)
    assert store.machine_name == "orders"  # bound by the Orchestrator
    assert store.get_state("o-1") is None and store.get_context("o-1") == {}
    orchestrator.process_event("o-1", "ack", {"qty": 4})
    assert store.get_state("o-1") == "OPEN" and store.get_context("o-1") == {"qty": 4}
    store.set_state("o-1", "OPEN", metadata={"qty": 11})
    assert orchestrator.process_event("o-1", "fill", {}).target_state == "FILLED"
    assert store.get_state("o-1") == "FILLED"
    record = store.load("orders", "o-1")
    assert record.version == 3  # every documented write is a versioned one
    assert store.get_state("o-1", machine="other") is None  # partitioned by machine


def test_async_store_documented_calls(url: str) -> None:
    async def run() -> None:
        store = create_store(url, is_async=True)
        try:
            store.machine_name = "orders"
            assert await store.aget_state("a-1") is None
            await store.aset_state("a-1", "OPEN", metadata={"qty": 12})
            assert await store.aget_state("a-1") == "OPEN"
            assert await store.aget_context("a-1") == {"qty": 12}
            orchestrator = Orchestrator(machine=_machine(), store=store)
            result = await orchestrator.async_process_event("a-1", "fill", {})
            assert result.target_state == "FILLED"
            assert await store.aget_state("a-1") == "FILLED"
        finally:
            await store.close()

    asyncio.run(run())


def test_redis_scheduler_schedule(redis_url: str, unique_name: str) -> None:
    now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    scheduler = RedisScheduler(redis_url, prefix=f"t:{unique_name}", clock=lambda: now)
    try:
        timer_id = scheduler.schedule("e-1", "remind", 5_000, machine="orders")
        scheduler.schedule("e-1", "remind", 5_000, machine="orders", key="cancel-me")
        scheduler.unschedule("e-1", "cancel-me", machine="orders")
        assert scheduler.claim_due(now + timedelta(seconds=4)) == []
        (due,) = scheduler.claim_due(now + timedelta(seconds=5))
        assert due.timer_id == timer_id and due.trigger == "remind" and due.entity_id == "e-1"
        assert is_scheduled_by_hand(due)
    finally:
        scheduler.close()


def test_documented_sql_store_names_connect(
    tmp_path: Any, pg_migrated_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pystator import PostgresStateStore, RedisStateStore, SQLiteStateStore
    from pystator.fsm_core.errors import StoreError

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    unmigrated = SQLiteStateStore(fresh)
    with pytest.raises(StoreError, match="pystator db upgrade"):
        unmigrated.connect(auto_initialize=False)
    unmigrated.connect()  # the documented default migrates a new SQLite file
    unmigrated.set_state("s-1", "OPEN", machine="orders")
    assert unmigrated.get_state("s-1", machine="orders") == "OPEN"
    unmigrated.close()

    monkeypatch.delenv("PYSTATOR_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    default = SQLiteStateStore()
    assert default.connection_string == f"sqlite:///{tmp_path / 'pystator.db'}"
    default.close()

    with pytest.raises(ValueError):
        PostgresStateStore("")
    pg = PostgresStateStore(pg_migrated_url)
    pg.connect(validate_schema=True, auto_initialize=False)
    orchestrator = Orchestrator(machine=_machine(), store=pg)
    orchestrator.process_event("p-1", "ack", {})
    assert pg.get_state("p-1") == "OPEN"
    pg.close()

    redis_store = RedisStateStore(redis_url, key_prefix="docs")
    redis_store.connect()
    redis_store.close()
