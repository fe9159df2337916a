"""Operator webhooks, delivered from the durable outbox.

**What a webhook is told** (its ``kinds``):

- ``transition.failed``: a fleet event was rejected (unknown trigger, guard refused, invalid);
- ``dead_letter``: a fleet event failed its last attempt;
- ``dwell.breached``: an entity has stayed in one of the webhook's ``states`` longer than its
  ``dwell_seconds`` (measured from the entity's last write, once per entity version);
- ``machine.published``: a machine version was stored in the registry;
- ``test``: sent by ``POST /api/v1/webhooks/{id}/test``.

**How.** The relay's pass runs a :class:`WebhookDispatcher` tick: it scans for new notices and,
in one transaction, inserts a ``webhook_deliveries`` row (unique per webhook, kind and subject:
scanning twice, or from two relays, is a no-op) and an ``action_outbox`` row for it. The outbox
sweep then runs :class:`WebhookSender` like any action: at least once, retried with the outbox's
backoff (``PYSTATOR_ACTION_RETRY_*``) up to ``PYSTATOR_ACTION_MAX_ATTEMPTS``, kept across a
worker crash (the row's lease ends and another sweep takes it). Nothing is sent inline in a
request or an apply. Each attempt's status and error are written on the delivery row, in the
transaction that records the sweep's outcomes.

**Signature.** Each POST carries ``X-Pystator-Delivery`` (the delivery id: a receiver drops a
repeat by it), ``X-Pystator-Event`` (the kind), ``X-Pystator-Timestamp`` (Unix seconds) and
``X-Pystator-Signature: sha256=<hex>``, the HMAC-SHA256 with the webhook's secret of
``<timestamp>.<raw body>`` (:func:`signature`).

**Connections.** A sender keeps one HTTP client per process (:class:`httpx.Client`, made on first
use and again after a fork): its keep-alive connections are reused from one delivery to the next,
at most :data:`MAX_CONNECTIONS` of them, each idle one closed after
:data:`KEEPALIVE_SECONDS`, and all closed with the runtime (:meth:`WebhookSender.close`). Every
request has the same :data:`DEFAULT_TIMEOUT_SECONDS` for connecting, writing, reading and for
waiting for a free connection; TLS checks certificates with the system's trust store (as
``urllib`` did), proxies come from ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``, and redirects
are not followed (a 3xx is a failed attempt). At most :data:`MAX_RESPONSE_BYTES` of an answer
are read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Connection, Engine, RowMapping

from pystator.config.logs import get_logger
from pystator.fsm_core.clock import Clock
from pystator.stores.sql import outbox_queries, webhook_queries
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.db_clock import bind_now, read_now
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.rows import NewAction, OutboxRow
from pystator.stores.sql.webhook_queries import WebhookRow

#: The outbox ``action`` of a webhook delivery (and the ``machine`` its rows carry).
WEBHOOK_ACTION = "pystator.webhook"
WEBHOOK_MACHINE = "pystator.webhooks"

TRANSITION_FAILED = "transition.failed"
DEAD_LETTER = "dead_letter"
DWELL_BREACHED = "dwell.breached"
MACHINE_PUBLISHED = "machine.published"
TEST = "test"
#: The kinds a webhook may subscribe to.
KINDS = (TRANSITION_FAILED, DEAD_LETTER, DWELL_BREACHED, MACHINE_PUBLISHED)

SIGNATURE_HEADER = "X-Pystator-Signature"
TIMESTAMP_HEADER = "X-Pystator-Timestamp"
DELIVERY_HEADER = "X-Pystator-Delivery"
EVENT_HEADER = "X-Pystator-Event"

#: Seconds a POST may take (to connect, to send, to wait for each read of the answer, and to
#: wait for a free pooled connection).
DEFAULT_TIMEOUT_SECONDS = 10.0
#: Deliveries of one outbox sweep sent at once (per process; the rest wait their turn).
SEND_THREADS = 4
#: Connections a sender's client keeps open at most (per process, across all receivers).
MAX_CONNECTIONS = 8
#: Seconds an idle kept-alive connection is kept before it is closed.
KEEPALIVE_SECONDS = 30.0
#: Bytes of a receiver's answer that are read (the rest is dropped with its connection).
MAX_RESPONSE_BYTES = 64 * 1024
#: How far back a dispatcher that just started looks for notices.
LOOKBACK_SECONDS = 3600.0
#: How far back each pass looks again (a row stamped just before the previous pass but
#: committed after it is still found; the unique key drops what was found before).
OVERLAP_SECONDS = 120.0
#: Notices of one kind per webhook per pass.
SCAN_LIMIT = 200
#: Seconds a sender keeps a webhook's URL and secret before reading them again.
WEBHOOK_CACHE_SECONDS = 5.0

log = get_logger("pystator.webhooks")


class WebhookDeliveryError(RuntimeError):
    """A POST that failed (connection refused, timeout, a status other than 2xx)."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Pystator-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of
    ``<timestamp>.<body>`` keyed with the webhook's secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether a received POST carries a valid signature (what a receiver does)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    return hmac.compare_digest(given, signature(secret, stamp, body))


def enqueue(
    conn: Connection,
    webhook: WebhookRow,
    *,
    kind: str,
    source_key: str,
    payload: Mapping[str, Any],
    now: datetime,
) -> int | None:
    """Record a delivery and its outbox row (in the caller's transaction); the delivery id,
    or None when this webhook already had this notice."""
    delivery_id = webhook_queries.add_delivery(
        conn, webhook_id=webhook.id, kind=kind, source_key=source_key, payload=payload, now=now
    )
    if delivery_id is None:
        return None
    action = NewAction(
        event_id=None,
        machine=WEBHOOK_MACHINE,
        entity_id=str(webhook.id),
        entity_version=delivery_id,
        action=WEBHOOK_ACTION,
        phase="webhook",
        params={
            "delivery_id": delivery_id,
            "kind": kind,
            "created_at": now.isoformat(),
            "payload": dict(payload),
        },
        context={},
    )
    [outbox_id] = outbox_queries.insert_outbox(conn, [action], now, lease=timedelta(0))
    webhook_queries.set_outbox(conn, delivery_id, outbox_id)
    return delivery_id


class WebhookSender:
    """Runs webhook outbox rows: POSTs each signed delivery; the outcomes are written on the
    delivery rows in the transaction that records the sweep (:meth:`record`). Called from
    several threads at once (a sweep sends :data:`SEND_THREADS` deliveries side by side)."""

    def __init__(
        self,
        engine: Engine,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Clock | None = None,
        cache_seconds: float = WEBHOOK_CACHE_SECONDS,
        connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.engine = engine
        self.timeout = timeout
        self.connections = connections
        self._client: httpx.Client | None = None
        self._client_pid = 0
        self._client_lock = threading.Lock()
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._hooks: dict[int, tuple[float, WebhookRow | None]] = {}
        self._hooks_lock = threading.Lock()
        # outbox id -> (the receiver's status, the error): what record() writes
        self._answers: dict[int, tuple[int | None, str | None]] = {}
        self._dropped: dict[int, str] = {}

    def __call__(self, row: OutboxRow) -> None:
        """Send the delivery ``row`` carries; raises :class:`WebhookDeliveryError` to be
        retried."""
        webhook = self._webhook(int(row.entity_id))
        if webhook is None:
            self._dropped[row.id] = "the webhook was deleted: not sent"
            return  # nothing to retry
        params = row.params
        body = json.dumps(
            {
                "id": params["delivery_id"],
                "kind": params["kind"],
                "webhook_id": webhook.id,
                "created_at": params.get("created_at"),
                "attempt": row.attempts + 1,
                "data": params.get("payload", {}),
            },
            separators=(",", ":"),
            default=str,
        ).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "pystator-webhooks",
            DELIVERY_HEADER: str(params["delivery_id"]),
            EVENT_HEADER: str(params["kind"]),
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: signature(webhook.secret, stamp, body),
        }
        try:
            with self._http().stream("POST", webhook.url, content=body, headers=headers) as answer:
                _drain(answer)
                status = answer.status_code
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            error = f"POST {webhook.url} failed: {str(exc) or type(exc).__name__}"
            self._answers[row.id] = (None, error)
            raise WebhookDeliveryError(error) from exc
        if not 200 <= status < 300:
            error = f"the receiver answered {status}"
            self._answers[row.id] = (status, error)
            raise WebhookDeliveryError(error)
        self._answers[row.id] = (status, None)

    def close(self) -> None:
        """Close the pooled connections (the runtime's close); a later delivery opens new ones."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None and self._client_pid == os.getpid():
            client.close()

    def _http(self) -> httpx.Client:
        """This process's client (made on first use, and anew in a forked child: sockets are
        never shared across processes)."""
        with self._client_lock:
            if self._client is None or self._client_pid != os.getpid():
                limits = httpx.Limits(
                    max_connections=self.connections,
                    max_keepalive_connections=self.connections,
                    keepalive_expiry=KEEPALIVE_SECONDS,
                )
                verify = ssl.create_default_context()
                # TCP_NODELAY: the headers and the body go out as two writes; with Nagle's
                # algorithm the body would wait for the receiver's delayed ACK of the headers
                transport = httpx.HTTPTransport(
                    verify=verify,
                    limits=limits,
                    socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                )
                self._client = httpx.Client(
                    timeout=self.timeout,
                    limits=limits,
                    verify=verify,
                    transport=transport,
                    follow_redirects=False,
                )
                self._client_pid = os.getpid()
            return self._client

    def record(
        self,
        conn: Connection,
        done: Sequence[int],
        failures: Sequence[tuple[OutboxRow, Exception]],
    ) -> None:
        """Write this sweep's webhook outcomes (an :data:`~pystator.fleet.outbox.OutcomeRecorder`)."""
        delivered: dict[int, int | None] = {}
        dropped: dict[int, str] = {}
        for outbox_id in done:
            if outbox_id in self._dropped:
                dropped[outbox_id] = self._dropped.pop(outbox_id)
            elif outbox_id in self._answers:
                delivered[outbox_id] = self._answers.pop(outbox_id)[0]
        failed: dict[int, tuple[int | None, str]] = {}
        for row, exc in failures:
            if row.action == WEBHOOK_ACTION:
                status, error = self._answers.pop(row.id, (None, None))
                failed[row.id] = (status, error or str(exc))
        if delivered or failed or dropped:
            webhook_queries.record_outcomes(
                conn,
                delivered=delivered,
                failed=failed,
                dropped=dropped,
                now=bind_now(conn, self.clock),
            )

    def _webhook(self, webhook_id: int) -> WebhookRow | None:
        cached = self._hooks.get(webhook_id)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        with self._hooks_lock:  # one read for the sending threads that all missed
            cached = self._hooks.get(webhook_id)
            if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
                return cached[1]
            with translate_errors("webhooks"), self.engine.connect() as conn:
                found = webhook_queries.get_webhook(conn, webhook_id)
            self._hooks[webhook_id] = (time.monotonic(), found)
            return found


class WebhookDispatcher:
    """Finds new notices for the enabled webhooks and queues their deliveries (a relay duty)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        lookback: float = LOOKBACK_SECONDS,
        overlap: float = OVERLAP_SECONDS,
        limit: int = SCAN_LIMIT,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.lookback = timedelta(seconds=lookback)
        self.overlap = timedelta(seconds=overlap)
        self.limit = limit
        self._since: datetime | None = None

    def tick(self) -> int:
        """One pass: the deliveries it queued."""
        queued = 0
        with translate_errors("webhooks"), transaction(self.engine) as conn:
            hooks = webhook_queries.list_webhooks(conn, enabled_only=True)
            if not hooks:
                return 0
            now = read_now(conn, self.clock)
            since = self._since or now - self.lookback
            for hook in hooks:
                queued += self._scan(conn, hook, since, now)
        self._since = now - self.overlap
        return queued

    def _scan(self, conn: Connection, hook: WebhookRow, since: datetime, now: datetime) -> int:
        found: list[tuple[str, str, dict[str, Any]]] = []
        for kind, status in ((TRANSITION_FAILED, "rejected"), (DEAD_LETTER, "dead")):
            if kind in hook.kinds:
                rows = webhook_queries.finished_events(
                    conn, status=status, since=since, machine=hook.machine, limit=self.limit
                )
                found += [(kind, f"event:{r['id']}", _event_payload(r)) for r in rows]
        if MACHINE_PUBLISHED in hook.kinds:
            rows = webhook_queries.published_versions(
                conn, since=since, machine=hook.machine, limit=self.limit
            )
            found += [(MACHINE_PUBLISHED, f"{r['name']}@{r['version']}", _version(r)) for r in rows]
        if DWELL_BREACHED in hook.kinds and hook.dwell_seconds and hook.states:
            rows = webhook_queries.dwelling_entities(
                conn,
                webhook_id=hook.id,
                machine=hook.machine,
                states=hook.states,
                entered_before=now - timedelta(seconds=hook.dwell_seconds),
                limit=self.limit,
            )
            found += [
                (
                    DWELL_BREACHED,
                    f"{r['machine']}|{r['entity_id']}|{r['version']}",
                    _dwell(r, hook.dwell_seconds),
                )
                for r in rows
            ]
        queued = 0
        for kind, key, payload in found:
            if enqueue(conn, hook, kind=kind, source_key=key, payload=payload, now=now):
                queued += 1
        return queued


def _drain(answer: httpx.Response) -> None:
    """Read the answer up to :data:`MAX_RESPONSE_BYTES` (read whole, its connection is reused;
    a longer one is closed with its connection)."""
    size = 0
    for chunk in answer.iter_raw():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return


def _event_payload(row: RowMapping) -> dict[str, Any]:
    errors = list(row["errors"] or [])
    return {
        "event_id": row["id"],
        "machine": row["machine"],
        "entity_id": row["entity_id"],
        "trigger": row["trigger"],
        "status": row["status"],
        "attempts": row["attempts"],
        "outcome": row["outcome"],
        "last_error": errors[-1] if errors else None,
        "at": _iso(row["updated_at"]),
    }


def _version(row: RowMapping) -> dict[str, Any]:
    return {
        "machine": row["name"],
        "version": row["version"],
        "checksum": row["checksum"],
        "created_by": row["created_by"],
        "at": _iso(row["created_at"]),
    }


def _dwell(row: RowMapping, seconds: int) -> dict[str, Any]:
    return {
        "machine": row["machine"],
        "entity_id": row["entity_id"],
        "state": row["state"],
        "version": row["version"],
        "since": _iso(row["updated_at"]),
        "dwell_seconds": seconds,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


__all__ = [
    "DEAD_LETTER",
    "DWELL_BREACHED",
    "KINDS",
    "MACHINE_PUBLISHED",
    "SEND_THREADS",
    "SIGNATURE_HEADER",
    "TEST",
    "TRANSITION_FAILED",
    "WEBHOOK_ACTION",
    "WEBHOOK_MACHINE",
    "WebhookDeliveryError",
    "WebhookDispatcher",
    "WebhookSender",
    "enqueue",
    "signature",
    "verify",
]
