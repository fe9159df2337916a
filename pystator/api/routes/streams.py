"""The live feeds as server-sent events (viewer): ``GET /api/v1/transitions/stream`` (every
committed transition, the tail of ``GET /api/v1/transitions``) and ``GET /api/v1/events/stream``
(configuration changes — machines published or retired, API keys, webhooks — whichever door
made them: the API, the dashboard, the command line, Python).

Registered before the events router: ``stream`` is not an event id.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from pystator.api.deps import ServicesDep
from pystator.api.params import NameFilter
from pystator.api.schemas.common import PROBLEMS
from pystator.api.streams import (
    MAX_CURSOR,
    MEDIA_TYPE,
    STREAM_HEADERS,
    StreamViewer,
    start_cursor,
    tail,
)
from pystator.fleet import door
from pystator.services import feeds

router = APIRouter(prefix="/api/v1", tags=["streams"], responses=PROBLEMS)

#: The longest ``max_seconds`` a client may ask for (a day).
MAX_STREAM_SECONDS = 86_400.0

_STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "server-sent events: `id` (resume with `Last-Event-ID`), `event`, and "
        "one `data` line of JSON per item; comment lines while idle",
        "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}

After = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_CURSOR,
        description="start after this item id (0: from the oldest kept); default: new items "
        "only. A `Last-Event-ID` header wins",
    ),
]
MaxSeconds = Annotated[
    float | None,
    Query(
        ge=0,
        le=MAX_STREAM_SECONDS,
        description="end the stream after this many seconds (default: never)",
    ),
]
LastEventId = Annotated[
    str | None,
    Header(max_length=32, description="the id of the last event received (reconnection)"),
]


@router.get("/transitions/stream", response_class=StreamingResponse, responses=_STREAM_RESPONSE)
async def transitions_stream(
    services: ServicesDep,
    _viewer: StreamViewer,
    after: After = None,
    machine: NameFilter = None,
    entity_id: NameFilter = None,
    max_seconds: MaxSeconds = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Committed transitions as they commit (event ``transition``; its data is a
    ``GET /api/v1/transitions`` item), in the feed's commit-safe order."""
    engine = services.engine
    page = partial(
        feeds.transitions_page,
        engine,
        machine=_filter("machine", machine),
        entity_id=_filter("entity_id", entity_id),
    )
    cursor = await anyio.to_thread.run_sync(
        start_cursor,
        last_event_id,
        after,
        partial(feeds.newest_position, engine, "transitions"),
    )
    return StreamingResponse(
        tail(page, cursor, max_seconds=max_seconds), media_type=MEDIA_TYPE, headers=STREAM_HEADERS
    )


@router.get("/events/stream", response_class=StreamingResponse, responses=_STREAM_RESPONSE)
async def config_stream(
    services: ServicesDep,
    _viewer: StreamViewer,
    after: After = None,
    max_seconds: MaxSeconds = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Configuration changes as they commit; the event name is the kind (``machine.published``,
    ``machine.retired``, ``api_key.created``, ``api_key.revoked``, ``webhook.created``, …)."""
    engine = services.engine
    cursor = await anyio.to_thread.run_sync(
        start_cursor, last_event_id, after, partial(feeds.newest_position, engine, "config")
    )
    return StreamingResponse(
        tail(partial(feeds.config_changes_page, engine), cursor, max_seconds=max_seconds),
        media_type=MEDIA_TYPE,
        headers=STREAM_HEADERS,
    )


def _filter(field: str, value: str | None) -> str | None:
    """A filter value through the door (a NUL byte is a 422, never a database error)."""
    return door.check_name(field, value, limit=door.Limits().max_entity_id_length, required=False)


__all__ = ["router"]
