"""Server-sent events: a feed page function turned into a ``text/event-stream`` tail.

Each item is one SSE event whose ``id`` is the item's id: a client that reconnects sends it back
as ``Last-Event-ID`` and continues after it, losing nothing and repeating nothing. Between pages
the stream polls the database every :data:`POLL_SECONDS` while it is idle, every
:data:`BUSY_POLL_SECONDS` while rows are flowing (the last read found some), and right away after
a full page; while idle it sends a comment every :data:`HEARTBEAT_SECONDS` (proxies close silent
connections). The database calls run in a worker
thread; the stream ends when the client goes away.

Browsers' ``EventSource`` cannot send headers: the stream routes also take the token as an
``access_token`` query parameter (:class:`StreamRoleCheck`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import Depends, Query, Request

from pystator.api.auth import Arrival, Principal
from pystator.api.deps import RoleCheck, ServicesDep, credentials
from pystator.fsm_core.errors import InvalidEventError
from pystator.services.api_keys import Role
from pystator.services.feeds import FeedCursor, FeedItem, FeedPage

#: Seconds between two reads of an idle feed.
POLL_SECONDS = 0.1
#: Seconds between two reads while rows are flowing (the last read found some, less than a page).
BUSY_POLL_SECONDS = 0.025
#: Seconds of silence after which an idle stream sends a comment line.
HEARTBEAT_SECONDS = 15.0
#: Items read per page.
PAGE_SIZE = 500
#: The reconnection delay (milliseconds) the stream asks browsers to wait.
RETRY_MILLISECONDS = 2000

MEDIA_TYPE = "text/event-stream"
#: Response headers of a stream: no caching, no proxy buffering.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def stream_principal(
    request: Request,
    services: ServicesDep,
    access_token: Annotated[
        str | None,
        Query(
            max_length=4096,
            description="the API key or JWT, for clients that cannot send headers "
            "(a browser's EventSource); the Authorization header wins",
        ),
    ] = None,
) -> Principal:
    """The caller of a stream: its header credentials, else ``access_token``."""
    token = credentials(request) or (access_token.strip() if access_token else None) or None
    return services.auth.authenticate(token, arrival=Arrival.of(request))


class StreamRoleCheck(RoleCheck):
    """:class:`RoleCheck` for the stream routes (the token may come as a query parameter)."""

    def __call__(self, principal: Annotated[Principal, Depends(stream_principal)]) -> Principal:
        return super().__call__(principal)


StreamViewer = Annotated[Principal, Depends(StreamRoleCheck(Role.VIEWER))]


def sse_event(item: FeedItem) -> bytes:
    """One item as an SSE event (``id``, ``event``, one ``data`` line of JSON)."""
    data = json.dumps(item.data, separators=(",", ":"), default=str)
    return f"id: {item.id}\nevent: {item.event}\ndata: {data}\n\n".encode()


async def tail(
    page: FeedPage,
    cursor: FeedCursor,
    *,
    max_seconds: float | None = None,
    poll_seconds: float = POLL_SECONDS,
    busy_poll_seconds: float = BUSY_POLL_SECONDS,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> AsyncIterator[bytes]:
    """The SSE body: every item after ``cursor``, then new ones as they commit; ends after
    ``max_seconds`` (None: when the client goes away)."""
    started = time.monotonic()
    quiet_since = started
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    while True:
        items: list[FeedItem] = await anyio.to_thread.run_sync(page, cursor, PAGE_SIZE)
        if items:
            yield b"".join(sse_event(i) for i in items)
            cursor = FeedCursor(position=items[-1].position)
            quiet_since = time.monotonic()
        now = time.monotonic()
        if max_seconds is not None and now - started >= max_seconds:
            return
        if len(items) == PAGE_SIZE:
            continue
        if now - quiet_since >= heartbeat_seconds:
            yield b": keep-alive\n\n"
            quiet_since = now
        await anyio.sleep(busy_poll_seconds if items else poll_seconds)


#: The largest id a cursor may name (ids are bigints).
MAX_CURSOR = 2**62


def start_cursor(last_event_id: str | None, after: int | None, newest: Any) -> FeedCursor:
    """Where a stream starts: after ``Last-Event-ID`` when the client resumes, else after
    ``after`` (0: from the oldest item kept), else at the newest item now (``newest()``: its
    position, or None when the feed is empty). A ``Last-Event-ID`` that is not an id we sent is
    refused (422)."""
    if last_event_id is not None and last_event_id.strip():
        text = last_event_id.strip()
        if not text.isascii() or not text.isdigit() or int(text) > MAX_CURSOR:
            raise InvalidEventError(
                f"Last-Event-ID must be the id of an event this stream sent (0..{MAX_CURSOR})"
            )
        return FeedCursor(after_id=int(text))
    if after is not None:
        return FeedCursor(after_id=after)
    position = newest()
    return FeedCursor(position=position) if position is not None else FeedCursor()


__all__ = [
    "BUSY_POLL_SECONDS",
    "HEARTBEAT_SECONDS",
    "MAX_CURSOR",
    "MEDIA_TYPE",
    "POLL_SECONDS",
    "StreamRoleCheck",
    "StreamViewer",
    "sse_event",
    "start_cursor",
    "stream_principal",
    "tail",
]
