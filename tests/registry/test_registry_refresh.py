"""Closing an API process or a runtime waits for a background registry refresh still running.

Otherwise the refresh hands its connection back to a pool the process has just disposed, and that
connection is never closed: psycopg warns when the garbage collector finds it, in whatever test
is running by then (the autouse fixture in ``tests/conftest.py`` collects after every test, so a
leak fails here).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pystator.api.app_services import build_services
from pystator.fleet.runtime import Runtime
from pystator.registry.stored import StoredMachines
from pystator.stores.sql import registry_queries
from tests.support.api_clients import settings_for
from tests.support.waiting import wait_until_blocked

pytestmark = pytest.mark.integration

REFRESH = 2.0  # seconds between registry refreshes (on the registry's own, moved clock)


class SlowHeads:
    """``registry_queries.heads`` held until released, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.go = threading.Event()
        self._heads = registry_queries.heads

    def __call__(self, conn: Any) -> dict[str, int | None]:
        self.calls += 1
        self.started.set()
        assert self.go.wait(10)
        return self._heads(conn)


@pytest.fixture
def slow_heads(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowHeads]:
    slow = SlowHeads()
    slow.go.set()  # the first load, at start-up, runs through
    monkeypatch.setattr(registry_queries, "heads", slow)
    yield slow
    slow.go.set()


class Ticks:
    """A monotonic clock the test moves (it starts where the real one is)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def close_during_refresh(stored: StoredMachines, find: Any, close: Any, slow: SlowHeads) -> None:
    """Start a background refresh, close while it runs, then let it finish."""
    slow.go.clear()
    slow.started.clear()
    ticks = Ticks()
    stored.monotonic = ticks
    ticks.now += REFRESH * 5
    find("parcel")  # the refresh interval has passed: a refresh thread starts
    assert slow.started.wait(10)
    closer = threading.Thread(target=close, name="closer")
    closer.start()
    # close() must wait for the refresh: it is found blocked on the refresh's lock (it fails
    # here if close() returned instead), and stays there until the refresh is let go.
    wait_until_blocked(closer, StoredMachines.close, "with self._lock:", timeout=10)
    slow.go.set()
    closer.join(10)
    assert not closer.is_alive()


def test_api_services_close_waits_for_the_refresh(
    pg_migrated_url: str, slow_heads: SlowHeads
) -> None:
    services = build_services(settings_for(pg_migrated_url, registry_refresh_seconds=REFRESH))
    stored = services.machines.stored
    assert stored is not None
    close_during_refresh(stored, services.machines.find, services.close, slow_heads)
    calls = slow_heads.calls
    services.machines.find("parcel")  # closed: no refresh starts any more
    assert slow_heads.calls == calls


def test_runtime_close_waits_for_the_refresh(pg_migrated_url: str, slow_heads: SlowHeads) -> None:
    runtime = Runtime.from_settings(settings_for(pg_migrated_url, registry_refresh_seconds=REFRESH))
    stored = runtime.machines.stored
    assert stored is not None
    close_during_refresh(stored, runtime.machines.find, runtime.close, slow_heads)
