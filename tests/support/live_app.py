"""The real app (``create_app``) served by uvicorn in a thread on a loopback port, on any test
database — for tests that need real HTTP connections (SSE streams, disconnects) — and a small
reader of server-sent events."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from pystator.api import create_app
from tests.support.api_clients import settings_for
from tests.support.ports import free_port, port_open
from tests.support.waiting import wait_until


@dataclass(frozen=True)
class LiveApp:
    """A served app: its base URL."""

    base: str

    def client(self, **kw: Any) -> httpx.Client:
        """A client on the app (close it after use)."""
        return httpx.Client(base_url=self.base, timeout=30.0, **kw)


@contextmanager
def live_app(db_url: str, **overrides: Any) -> Iterator[LiveApp]:
    """Serve ``create_app(settings_for(db_url, **overrides))`` until the block ends."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings_for(db_url, **overrides)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-app", daemon=True)
    thread.start()
    try:
        wait_until(lambda: port_open(port), timeout=60, message="the app to listen")
        yield LiveApp(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event."""

    id: str | None
    event: str | None
    data: Any


def sse_events(response: httpx.Response) -> Iterator[SseEvent]:
    """The events of a streaming response, as they arrive (comments and ``retry`` skipped)."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                yield SseEvent(fields.get("id"), fields.get("event"), json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


def read_events(events: Iterator[SseEvent], count: int) -> list[SseEvent]:
    """The next ``count`` events of ``sse_events(response)`` (the client's read timeout bounds
    the wait)."""
    return [next(events) for _ in range(count)]


__all__ = ["LiveApp", "SseEvent", "live_app", "read_events", "sse_events"]
