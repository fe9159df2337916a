"""Webhook request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, StrictBool

from pystator.api.params import Text
from pystator.api.schemas.common import Out, Strict

Kind = Literal["transition.failed", "dead_letter", "dwell.breached", "machine.published"]
#: A name stored in a column or a JSON document: no control character (PostgreSQL refuses NUL).
Name = Text


class WebhookIn(Strict):
    """A webhook to create, or its new settings (PUT replaces them all; the secret only when
    one is given)."""

    name: Text = Field(min_length=1, max_length=200)
    url: Text = Field(
        min_length=8, max_length=2000, description="http:// or https:// URL to POST to"
    )
    kinds: list[Kind] = Field(min_length=1, max_length=8, description="what it is told")
    secret: Text | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="the HMAC key (default on creation: a random one, shown once)",
    )
    machine: Text | None = Field(
        default=None, min_length=1, max_length=200, description="only this machine"
    )
    states: list[Name] = Field(
        default_factory=list, max_length=100, description="states a dwell-time breach watches"
    )
    dwell_seconds: int | None = Field(default=None, ge=1, le=31 * 24 * 3600)
    enabled: StrictBool = True


class WebhookOut(Out):
    """A webhook (its secret masked)."""

    id: int
    name: str
    url: str
    kinds: list[str]
    machine: str | None
    states: list[str]
    dwell_seconds: int | None
    enabled: bool
    secret_hint: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class NewWebhookOut(WebhookOut):
    """A webhook just created: ``secret`` is shown this once."""

    secret: str


class DeliveryOut(Out):
    """One delivery: what was sent, how many attempts, the last answer or error."""

    id: int
    webhook_id: int
    kind: str
    source_key: str
    payload: dict[str, Any]
    status: str = Field(
        description="pending (not tried yet), delivered, failing (retried), dead (gave up), "
        "discarded"
    )
    attempts: int
    response_status: int | None
    last_error: str | None
    outbox_id: int | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(Out):
    """A page of the delivery log, newest first; pass ``next_cursor`` as ``before``."""

    items: list[DeliveryOut]
    next_cursor: int | None
    limit: int


__all__ = ["DeliveryOut", "DeliveryPage", "NewWebhookOut", "WebhookIn", "WebhookOut"]
