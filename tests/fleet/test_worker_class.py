"""``Worker`` from Python: start, apply submitted events, drain on shutdown, on SQLite and
PostgreSQL; ``run()`` returns after ``shutdown()`` or SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from pystator.config.settings import Settings
from pystator.stores.sql.connections import fleet_engine
from pystator.stores.sql.schema import action_outbox
from pystator.worker import Worker, WorkerConfig, submit_event_sync
from tests.support import worker_processes as procs
from tests.support.waiting import until as wait_on_loop
from tests.support.worker import MACHINE, Hooks, statuses

pytestmark = pytest.mark.integration

WAIT_SECONDS = 60.0
POLL_SECONDS = 0.02


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database: an empty SQLite file (the worker migrates it) or a migrated PostgreSQL
    database (there migrations are a deployment step)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_migrated_url"
    return str(request.getfixturevalue(fixture))


def make_worker(url: str, hooks: Hooks) -> Worker:
    guards, actions = hooks.registries()
    config = WorkerConfig(db_url=url, machine_dir=str(procs.MACHINES), poll_interval_ms=20)
    return Worker(config, guards=guards, actions=actions, settings=Settings())


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` on the event loop; fail after :data:`WAIT_SECONDS`."""
    await wait_on_loop(condition, timeout=WAIT_SECONDS, interval=POLL_SECONDS, message=what)


def outbox_statuses(url: str) -> list[str]:
    engine = fleet_engine(url)
    try:
        with engine.connect() as conn:
            return [str(s) for s in conn.execute(sa.select(action_outbox.c.status)).scalars()]
    finally:
        engine.dispose()


def event_statuses(url: str) -> list[str]:
    engine = fleet_engine(url)
    try:
        return sorted(statuses(engine).values())
    finally:
        engine.dispose()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def test_a_worker_applies_submitted_events_and_drains_in_flight_work(db_url: str) -> None:
    hooks = Hooks()
    entered, release = threading.Event(), threading.Event()

    def slow_action(ctx: Mapping[str, Any]) -> None:
        if ctx.get("slow"):
            entered.set()
            release.wait(WAIT_SECONDS)

    hooks.on_action = slow_action
    worker = make_worker(db_url, hooks)

    async def scenario() -> None:
        await worker.start()
        for trigger in ("open", "bump", "close"):
            submit_event_sync(MACHINE, "e1", trigger)  # through the worker's own runtime
        await until(lambda: event_statuses(db_url) == ["completed"] * 3, "e1's events applied")
        submit_event_sync(MACHINE, "e2", "open", {"slow": True})
        await until(entered.is_set, "the slow action to start")
        shutdown = asyncio.create_task(worker.shutdown())
        await asyncio.sleep(0)  # shutdown is under way, waiting for the action
        release.set()
        await shutdown

    run(scenario)
    assert worker.drained is True
    assert [c.get("slow", False) for c in hooks.calls] == [False, False, True]
    assert event_statuses(db_url) == ["completed"] * 4
    assert outbox_statuses(db_url) == ["done"] * 3  # the in-flight action was recorded too


def test_run_returns_after_shutdown_from_another_task(sqlite_url: str) -> None:
    worker = make_worker(sqlite_url, Hooks())

    async def scenario() -> None:
        runner = asyncio.create_task(worker.run())
        await until(lambda: worker.runtime is not None, "the worker to start")
        submit_event_sync(MACHINE, "e1", "open")
        await until(lambda: event_statuses(sqlite_url) == ["completed"], "the event applied")
        await worker.shutdown()
        await asyncio.wait_for(runner, WAIT_SECONDS)

    run(scenario)
    assert worker.drained is True


def test_run_drains_and_returns_on_sigterm_in_the_main_thread(sqlite_url: str) -> None:
    worker = make_worker(sqlite_url, Hooks())
    before = signal.getsignal(signal.SIGTERM)

    async def scenario() -> None:
        runner = asyncio.create_task(worker.run())
        await until(lambda: signal.getsignal(signal.SIGTERM) is not before, "the handler")
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(runner, WAIT_SECONDS)

    run(scenario)
    assert worker.drained is True
    assert signal.getsignal(signal.SIGTERM) is before  # handed back


def test_a_worker_reads_its_config_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, sqlite_url: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no pystator.cfg around
    monkeypatch.setenv("PYSTATOR_WORKER_DB_URL", sqlite_url)
    monkeypatch.setenv("PYSTATOR_WORKER_MACHINE_DIR", str(procs.MACHINES))
    monkeypatch.setenv("PYSTATOR_WORKER_CONCURRENCY", "3")
    monkeypatch.setenv("PYSTATOR_WORKER_ID", "worker-api-test")
    monkeypatch.setenv("PYSTATOR_APP", procs.APP)
    worker = Worker()

    async def scenario() -> None:
        await worker.start()
        submit_event_sync(MACHINE, "e1", "open")
        await until(lambda: event_statuses(sqlite_url) == ["completed"], "the event applied")
        await worker.shutdown()

    run(scenario)
    assert worker.runtime is not None
    assert worker.runtime.status.worker_id == "worker-api-test"
    assert worker.runtime.status.info["concurrency"] == 3
