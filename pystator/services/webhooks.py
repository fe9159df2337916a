"""Operator webhooks: create, change, delete, list, test, and read their delivery log.

What a webhook is told, how deliveries are queued and retried, and how a receiver checks the
signature: :mod:`pystator.fleet.webhooks`. Its row types (defined next to their SQL in
:mod:`pystator.stores.sql.webhook_queries`) are this module's interface. A test delivery is queued like any other (it goes out
with the next outbox sweep), never sent from the request. Creating, changing and deleting a
webhook write their audit row (``webhook.created``, ``…updated``, ``…deleted``, by the caller's
:class:`~pystator.services.audit.Actor`) in the change's transaction.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine

from pystator.fleet.webhooks import KINDS, TEST, enqueue
from pystator.fsm_core.errors import FSMError, NotFoundError
from pystator.stores.sql import audit_queries, webhook_queries
from pystator.stores.sql.audit_queries import Actor, ChangeKind
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.db_clock import read_now
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.webhook_queries import DeliveryRow, WebhookRow

#: Characters of a secret shown in listings (the rest is masked).
SECRET_HINT = 4
MAX_URL_LENGTH = 2000


class InvalidWebhookError(FSMError):
    """A webhook that cannot work: its URL, kinds or dwell settings (HTTP: 422)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSpec:
    """What a webhook is: where it posts, what it is told, how it signs."""

    name: str
    url: str
    kinds: Sequence[str]
    secret: str | None = None  # None: a random one is made (creation only)
    machine: str | None = None
    states: Sequence[str] = ()
    dwell_seconds: int | None = None
    enabled: bool = True


def masked(secret: str) -> str:
    """A secret as listings show it."""
    return secret[:SECRET_HINT] + "…"


def check_spec(spec: WebhookSpec) -> None:
    """Refuse a spec that cannot work (a clear 422)."""
    parts = urlsplit(spec.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhookError(
            f"url must be an http:// or https:// URL with a host, got {spec.url!r}",
            details={"field": "url"},
        )
    unknown = sorted(set(spec.kinds) - set(KINDS))
    if unknown or not spec.kinds:
        raise InvalidWebhookError(
            f"kinds must be one or more of {', '.join(KINDS)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
            details={"field": "kinds"},
        )
    if "dwell.breached" in spec.kinds and (not spec.states or not spec.dwell_seconds):
        raise InvalidWebhookError(
            "dwell.breached needs the states to watch and dwell_seconds",
            details={"field": "states"},
        )


def _values(spec: WebhookSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "url": spec.url,
        "kinds": list(dict.fromkeys(spec.kinds)),
        "machine": spec.machine,
        "states": list(dict.fromkeys(spec.states)),
        "dwell_seconds": spec.dwell_seconds,
        "enabled": spec.enabled,
    }


def create(engine: Engine, spec: WebhookSpec, *, by: Actor) -> WebhookRow:
    """Store a new webhook (its secret is random unless given)."""
    check_spec(spec)
    with translate_errors("webhooks"), transaction(engine) as conn:
        now = read_now(conn)
        webhook_id = webhook_queries.insert_webhook(
            conn,
            {
                **_values(spec),
                "secret": spec.secret or secrets.token_urlsafe(32),
                "created_by": by.principal,
                "created_at": now,
                "updated_at": now,
            },
        )
        found = webhook_queries.get_webhook(conn, webhook_id)
        audit_queries.record_change(
            conn,
            by,
            at=now,
            kind=ChangeKind.WEBHOOK_CREATED,
            status=201,
            target=f"webhook:{webhook_id}",
            selection=_values(spec),
        )
    assert found is not None
    return found


def update(engine: Engine, webhook_id: int, spec: WebhookSpec, *, by: Actor) -> WebhookRow:
    """Replace a webhook's settings (its secret only when one is given)."""
    check_spec(spec)
    values = _values(spec)
    selection = {**values, "secret_changed": bool(spec.secret)}
    if spec.secret:
        values["secret"] = spec.secret
    with translate_errors("webhooks"), transaction(engine) as conn:
        now = read_now(conn)
        values["updated_at"] = now
        if not webhook_queries.update_webhook(conn, webhook_id, values):
            raise _missing(webhook_id)
        found = webhook_queries.get_webhook(conn, webhook_id)
        audit_queries.record_change(
            conn,
            by,
            at=now,
            kind=ChangeKind.WEBHOOK_UPDATED,
            status=200,
            target=f"webhook:{webhook_id}",
            selection=selection,
            affected=1,
        )
    assert found is not None
    return found


def delete(engine: Engine, webhook_id: int, *, by: Actor) -> WebhookRow:
    """Remove a webhook (its delivery log stays; queued deliveries are dropped unsent)."""
    with translate_errors("webhooks"), transaction(engine) as conn:
        found = webhook_queries.get_webhook(conn, webhook_id)
        if found is None or not webhook_queries.delete_webhook(conn, webhook_id):
            raise _missing(webhook_id)
        audit_queries.record_change(
            conn,
            by,
            at=read_now(conn),
            kind=ChangeKind.WEBHOOK_DELETED,
            status=200,
            target=f"webhook:{webhook_id}",
            affected=1,
        )
    return found


def get(engine: Engine, webhook_id: int) -> WebhookRow:
    """One webhook (404 when missing)."""
    with translate_errors("webhooks"), engine.connect() as conn:
        found = webhook_queries.get_webhook(conn, webhook_id)
    if found is None:
        raise _missing(webhook_id)
    return found


def list_all(engine: Engine) -> list[WebhookRow]:
    """Every webhook, by id."""
    with translate_errors("webhooks"), engine.connect() as conn:
        return webhook_queries.list_webhooks(conn)


def send_test(engine: Engine, webhook_id: int, *, by: str) -> DeliveryRow:
    """Queue a ``test`` delivery (sent by the next outbox sweep); returns it."""
    with translate_errors("webhooks"), transaction(engine) as conn:
        found = webhook_queries.get_webhook(conn, webhook_id)
        if found is None:
            raise _missing(webhook_id)
        now = read_now(conn)
        delivery_id = enqueue(
            conn,
            found,
            kind=TEST,
            source_key=f"test:{uuid.uuid4().hex}",
            payload={"message": "a test delivery", "requested_by": by, "at": now.isoformat()},
            now=now,
        )
        assert delivery_id is not None  # a fresh key is never a repeat
        delivery = webhook_queries.load_delivery(conn, delivery_id)
    assert delivery is not None
    return delivery


def deliveries(
    engine: Engine,
    *,
    webhook_id: int | None,
    limit: int,
    before_id: int | None = None,
    status: str | None = None,
) -> list[DeliveryRow]:
    """The delivery log, newest first (of one webhook when ``webhook_id`` is given)."""
    with translate_errors("webhooks"), engine.connect() as conn:
        if webhook_id is not None and webhook_queries.get_webhook(conn, webhook_id) is None:
            raise _missing(webhook_id)
        return webhook_queries.list_deliveries(
            conn, webhook_id=webhook_id, limit=limit, before_id=before_id, status=status
        )


def _missing(webhook_id: int) -> NotFoundError:
    return NotFoundError(f"no webhook {webhook_id}", details={"webhook_id": webhook_id})


__all__ = [
    "DeliveryRow",
    "InvalidWebhookError",
    "WebhookRow",
    "WebhookSpec",
    "check_spec",
    "create",
    "delete",
    "deliveries",
    "get",
    "list_all",
    "masked",
    "send_test",
    "update",
]
