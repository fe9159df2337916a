"""Every query on ``webhooks`` and ``webhook_deliveries``, and the scans that find what a
webhook is told about (events rejected or dead-lettered, entities dwelling too long in a state,
machine versions published).

A delivery row is inserted once per (webhook, kind, source key): finding a notice again (the
next scan, another relay) is a no-op. Its POST runs from an ``action_outbox`` row (retries,
leases, a crash-safe sweep); each attempt's outcome is written back to the delivery row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from pystator.fsm_core.clock import as_utc
from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.schema import (
    action_outbox,
    entity_states,
    machine_versions,
    webhook_deliveries,
    webhooks,
    worker_events,
)

_W = webhooks.c
_D = webhook_deliveries.c
_E = worker_events.c
_S = entity_states.c
_V = machine_versions.c


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookRow:
    """One ``webhooks`` row."""

    id: int
    name: str
    url: str
    secret: str
    kinds: tuple[str, ...]
    machine: str | None
    states: tuple[str, ...]
    dwell_seconds: int | None
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRow:
    """One ``webhook_deliveries`` row, with its outbox row's status when it is still kept."""

    id: int
    webhook_id: int
    kind: str
    source_key: str
    payload: Mapping[str, Any]
    outbox_id: int | None
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    outbox_status: str | None = None
    next_attempt_at: datetime | None = None


def _webhook(row: RowMapping) -> WebhookRow:
    return WebhookRow(
        id=int(row["id"]),
        name=row["name"],
        url=row["url"],
        secret=row["secret"],
        kinds=tuple(row["kinds"] or ()),
        machine=row["machine"],
        states=tuple(row["states"] or ()),
        dwell_seconds=row["dwell_seconds"],
        enabled=bool(row["enabled"]),
        created_by=row["created_by"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )


def insert_webhook(conn: Connection, values: Mapping[str, Any]) -> int:
    """Store a webhook; returns its id."""
    return int(conn.execute(sa.insert(webhooks).values(**values).returning(_W.id)).scalar_one())


def update_webhook(conn: Connection, webhook_id: int, values: Mapping[str, Any]) -> bool:
    """Change a webhook; False when there is none with that id."""
    result = conn.execute(sa.update(webhooks).where(_W.id == webhook_id).values(**values))
    return bool(result.rowcount)


def delete_webhook(conn: Connection, webhook_id: int) -> bool:
    """Remove a webhook (its delivery log stays); False when there is none with that id."""
    return bool(conn.execute(sa.delete(webhooks).where(_W.id == webhook_id)).rowcount)


def get_webhook(conn: Connection, webhook_id: int) -> WebhookRow | None:
    """One webhook, or None."""
    row = conn.execute(sa.select(webhooks).where(_W.id == webhook_id)).mappings().first()
    return _webhook(row) if row is not None else None


def list_webhooks(conn: Connection, *, enabled_only: bool = False) -> list[WebhookRow]:
    """Every webhook (or only the enabled ones), by id."""
    query = sa.select(webhooks).order_by(_W.id)
    if enabled_only:
        query = query.where(_W.enabled.is_(True))
    return [_webhook(r) for r in conn.execute(query).mappings()]


def add_delivery(
    conn: Connection,
    *,
    webhook_id: int,
    kind: str,
    source_key: str,
    payload: Mapping[str, Any],
    now: datetime,
) -> int | None:
    """Insert a delivery unless one exists for (webhook, kind, source key): its id, or None."""
    values = {
        "webhook_id": webhook_id,
        "kind": kind,
        "source_key": source_key,
        "payload": dict(payload),
        "status": "pending",
        "attempts": 0,
        "created_at": now,
    }
    dialect_insert = postgresql.insert if is_postgres(conn) else sqlite.insert
    statement = (
        dialect_insert(webhook_deliveries)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["webhook_id", "kind", "source_key"])
        .returning(_D.id)
    )
    found = conn.execute(statement).scalar()
    return int(found) if found is not None else None


def set_outbox(conn: Connection, delivery_id: int, outbox_id: int) -> None:
    """Link a delivery to the outbox row that sends it."""
    conn.execute(
        sa.update(webhook_deliveries).where(_D.id == delivery_id).values(outbox_id=outbox_id)
    )


def _delivery(row: RowMapping) -> DeliveryRow:
    delivered = row["delivered_at"]
    available = row.get("outbox_available_at")
    return DeliveryRow(
        id=int(row["id"]),
        webhook_id=int(row["webhook_id"]),
        kind=row["kind"],
        source_key=row["source_key"],
        payload=row["payload"] or {},
        outbox_id=row["outbox_id"],
        status=row["status"],
        attempts=int(row["attempts"]),
        response_status=row["response_status"],
        last_error=row["last_error"],
        created_at=as_utc(row["created_at"]),
        delivered_at=as_utc(delivered) if delivered is not None else None,
        outbox_status=row.get("outbox_status"),
        next_attempt_at=(
            as_utc(available)
            if available is not None and row.get("outbox_status") == "pending"
            else None
        ),
    )


def _with_outbox() -> sa.Select[Any]:
    return sa.select(
        webhook_deliveries,
        action_outbox.c.status.label("outbox_status"),
        action_outbox.c.available_at.label("outbox_available_at"),
    ).select_from(webhook_deliveries.outerjoin(action_outbox, action_outbox.c.id == _D.outbox_id))


def load_delivery(conn: Connection, delivery_id: int) -> DeliveryRow | None:
    """One delivery, or None."""
    row = conn.execute(_with_outbox().where(_D.id == delivery_id)).mappings().first()
    return _delivery(row) if row is not None else None


def list_deliveries(
    conn: Connection,
    *,
    webhook_id: int | None,
    limit: int,
    before_id: int | None = None,
    status: str | None = None,
) -> list[DeliveryRow]:
    """Deliveries, newest first, older than ``before_id`` (of one webhook, when given)."""
    query = _with_outbox().order_by(_D.id.desc()).limit(limit)
    if webhook_id is not None:
        query = query.where(_D.webhook_id == webhook_id)
    if before_id is not None:
        query = query.where(_D.id < before_id)
    if status is not None:
        query = query.where(_D.status == status)
    return [_delivery(r) for r in conn.execute(query).mappings()]


def record_outcomes(
    conn: Connection,
    *,
    delivered: Mapping[int, int | None],
    failed: Mapping[int, tuple[int | None, str]],
    dropped: Mapping[int, str],
    now: datetime | None,
) -> None:
    """Write a sweep's attempts on their delivery rows, by outbox id: ``delivered`` (the
    receiver's status), ``failed`` (status, error: retried) and ``dropped`` (not sent, why).
    ``now`` None: the database's clock."""
    stamp: Any = now if now is not None else sa.func.now()
    by_status: dict[int | None, list[int]] = {}
    for outbox_id, status in delivered.items():
        by_status.setdefault(status, []).append(outbox_id)
    for status, ids in by_status.items():
        conn.execute(
            sa.update(webhook_deliveries)
            .where(_D.outbox_id.in_(ids))
            .values(
                status="delivered",
                attempts=_D.attempts + 1,
                response_status=status,
                last_error=None,
                delivered_at=stamp,
            )
        )
    for outbox_id, (status, error) in failed.items():
        conn.execute(
            sa.update(webhook_deliveries)
            .where(_D.outbox_id == outbox_id)
            .values(
                status="failing",
                attempts=_D.attempts + 1,
                response_status=status,
                last_error=error,
            )
        )
    for outbox_id, why in dropped.items():
        conn.execute(
            sa.update(webhook_deliveries)
            .where(_D.outbox_id == outbox_id)
            .values(status="dropped", last_error=why)
        )


# ------------------------------------------------------------------------ what webhooks are told


def finished_events(
    conn: Connection,
    *,
    status: str,
    since: datetime,
    machine: str | None,
    limit: int,
) -> list[RowMapping]:
    """Events that reached ``status`` (``rejected``, ``dead``) at or after ``since``."""
    conditions = [_E.status == status, _E.updated_at >= since]
    if machine is not None:
        conditions.append(_E.machine == machine)
    query = (
        sa.select(
            _E.id,
            _E.machine,
            _E.entity_id,
            _E.trigger,
            _E.status,
            _E.attempts,
            _E.errors,
            _E.outcome,
            _E.updated_at,
        )
        .where(*conditions)
        .order_by(_E.updated_at, _E.id)
        .limit(limit)
    )
    return list(conn.execute(query).mappings())


def dwelling_entities(
    conn: Connection,
    *,
    webhook_id: int,
    machine: str | None,
    states: Sequence[str],
    entered_before: datetime,
    limit: int,
) -> list[RowMapping]:
    """Entities in one of ``states`` since before ``entered_before`` (their last write) that
    this webhook was not told about yet for that entity version."""
    key = _S.machine + "|" + _S.entity_id + "|" + sa.cast(_S.version, sa.String)
    told = (
        sa.select(_D.id)
        .where(_D.webhook_id == webhook_id, _D.kind == "dwell.breached", _D.source_key == key)
        .exists()
    )
    conditions = [_S.state.in_(list(states)), _S.updated_at < entered_before, ~told]
    if machine is not None:
        conditions.append(_S.machine == machine)
    query = (
        sa.select(_S.machine, _S.entity_id, _S.state, _S.version, _S.updated_at)
        .where(*conditions)
        .order_by(_S.updated_at)
        .limit(limit)
    )
    return list(conn.execute(query).mappings())


def published_versions(
    conn: Connection, *, since: datetime, machine: str | None, limit: int
) -> list[RowMapping]:
    """Machine versions stored at or after ``since``."""
    conditions = [_V.created_at >= since]
    if machine is not None:
        conditions.append(_V.name == machine)
    query = (
        sa.select(_V.name, _V.version, _V.checksum, _V.created_by, _V.created_at)
        .where(*conditions)
        .order_by(_V.created_at)
        .limit(limit)
    )
    return list(conn.execute(query).mappings())


__all__ = [
    "DeliveryRow",
    "WebhookRow",
    "add_delivery",
    "delete_webhook",
    "dwelling_entities",
    "finished_events",
    "get_webhook",
    "insert_webhook",
    "list_deliveries",
    "list_webhooks",
    "load_delivery",
    "published_versions",
    "record_outcomes",
    "set_outbox",
    "update_webhook",
]
