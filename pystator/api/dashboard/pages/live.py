"""``/ui/transitions/stream``: the transition feed as server-sent events for the dashboard's
own pages (signed in with the session cookie, which ``EventSource`` sends). The overview and an
entity's page re-render when a transition arrives instead of polling.

A stream ends after ``max_seconds`` (default :data:`DEFAULT_SECONDS`): the browser reconnects
by itself with ``Last-Event-ID`` and continues where it was.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from pystator.api.dashboard.session import User
from pystator.api.deps import ServicesDep
from pystator.api.streams import MEDIA_TYPE, STREAM_HEADERS, start_cursor, tail
from pystator.fleet import door
from pystator.services import feeds

router = APIRouter()

#: How long one dashboard stream stays open before the browser reconnects.
DEFAULT_SECONDS = 300.0


@router.get("/transitions/stream", response_class=StreamingResponse)
async def transitions_stream(
    services: ServicesDep,
    _user: User,
    machine: str | None = None,
    entity_id: str | None = None,
    max_seconds: Annotated[float, Query(ge=0, le=3600)] = DEFAULT_SECONDS,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> StreamingResponse:
    """New transitions (of one machine or entity when given) from now on."""
    limit = door.Limits().max_entity_id_length
    page = partial(
        feeds.transitions_page,
        services.engine,
        machine=door.check_name("machine", machine, limit=limit, required=False),
        entity_id=door.check_name("entity_id", entity_id, limit=limit, required=False),
    )
    cursor = await anyio.to_thread.run_sync(
        start_cursor,
        last_event_id,
        None,
        partial(feeds.newest_position, services.engine, "transitions"),
    )
    return StreamingResponse(
        tail(page, cursor, max_seconds=max_seconds), media_type=MEDIA_TYPE, headers=STREAM_HEADERS
    )


__all__ = ["DEFAULT_SECONDS", "router"]
