"""Apply-data: queue a trigger-less data update for one entity."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, StrictInt

from pystator.api.params import IdempotencyKey, MachineName
from pystator.api.schemas.common import Out, Strict
from pystator.config.settings import DEFAULT_MAX_ATTEMPTS
from pystator.fleet.door import MAX_ATTEMPTS_LIMIT


class ApplyDataIn(Strict):
    """The data to merge into the entity's context (routed by the machine's ``when`` rules)."""

    machine_name: MachineName
    data: dict[str, Any]
    idempotency_key: IdempotencyKey | None = None
    max_attempts: StrictInt = Field(
        default=DEFAULT_MAX_ATTEMPTS,
        # the range the door checks (its message names the rule)
        json_schema_extra={"minimum": 1, "maximum": MAX_ATTEMPTS_LIMIT},
    )
    fires_at: datetime | None = Field(default=None, description="not applied before (ISO 8601)")


class ApplyDataQueued(Out):
    """The queued update: poll ``GET /api/v1/events/{event_id}`` for its outcome."""

    event_id: int
    duplicate: bool
    status_url: str
