"""Runtimes on SQLite (embedded worker) and on PostgreSQL with a real worker fleet."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pystator import PyStatorRuntime
from tests.support.fleet_processes import RedisServer, WorkerFleet
from tests.support.worker_processes import ROOT

EXAMPLES = ROOT / "examples"


@dataclass
class Backend:
    """A runtime and what applies its queued events (None: its embedded worker)."""

    runtime: PyStatorRuntime
    fleet: WorkerFleet | None


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """A runtime on a fresh database: SQLite with the in-process broker (the runtime's own
    embedded worker applies queued events), or PostgreSQL with a private Redis broker and one
    real ``pystator worker`` process."""
    monkeypatch.chdir(EXAMPLES)  # the guide's snippets name files relative to it
    if request.param == "sqlite":
        runtime = PyStatorRuntime.from_url(f"sqlite:///{tmp_path / 'rt.db'}", environ={})
        try:
            yield Backend(runtime, None)
        finally:
            runtime.close()
        return
    url = str(request.getfixturevalue("pg_migrated_url"))
    with RedisServer(log_path=tmp_path / "redis.log") as redis:
        runtime = PyStatorRuntime.from_url(url, environ={"PYSTATOR_BROKER_URL": redis.url})
        fleet = WorkerFleet(
            database_url=url,
            broker_url=redis.url,
            log_dir=tmp_path,
            concurrency=2,
            extra_env={"PYSTATOR_REGISTRY_REFRESH_SECONDS": "0.2"},
        )
        try:
            with fleet:
                fleet.start(0)
                yield Backend(runtime, fleet)
        finally:
            runtime.close()
