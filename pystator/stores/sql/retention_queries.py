"""Every query of retention: what is old enough to go, and deleting it in small batches.

A :class:`Target` is one table and one outcome with its own window (completed events, rejected
events, done actions, …). Each batch is one statement that deletes at most ``limit`` rows past
their window, picked through an index (``ix_worker_events_status_updated``,
``ix_transition_history_created_at``, ``ix_action_outbox_status_completed``, ``ix_audit_log_at``,
``ix_idempotency_conflicts_created_at``, ``event_rollups``' primary key,
``ix_webhook_deliveries_status_delivered_at``; ``worker_heartbeats`` holds one small row per
worker process and is scanned), and skipping rows another transaction has locked on PostgreSQL.
Only finished rows are ever targets: pending and dead events, pending and dead actions, and
webhook deliveries still sent or retried (or dead, awaiting an operator) are not in any target's
``where``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.records import EventStatus
from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.rows import OutboxStatus
from pystator.stores.sql.schema import (
    action_outbox,
    audit_log,
    entity_states,
    event_rollups,
    idempotency_conflicts,
    machine_shadows,
    shadow_diffs,
    transition_history,
    webhook_deliveries,
    worker_events,
    worker_heartbeats,
)

_W = worker_events.c
_O = action_outbox.c
_D = webhook_deliveries.c
_S = entity_states.c

#: The policy names a window is set for (``PYSTATOR_RETENTION_<NAME>_DAYS``).
POLICIES = (
    "completed",
    "rejected",
    "history",
    "actions",
    "audit",
    "rollups",
    "heartbeats",
    "webhooks",
)
#: A webhook delivery is never pruned younger than this, whatever its window: its unique key is
#: what keeps the relay's webhook scan (which looks an hour back when it starts,
#: ``pystator.fleet.webhooks.LOOKBACK_SECONDS``) from queueing the same notice again.
WEBHOOK_MIN_AGE = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Target:
    """Rows of ``table`` matching ``where`` whose ``at`` is older than the window of
    ``policy``."""

    name: str  # what the report calls it: "worker_events.completed"
    policy: str  # one of POLICIES
    table: sa.Table
    key: tuple[sa.Column[Any], ...]
    at: sa.Column[Any]
    where: tuple[sa.ColumnElement[bool], ...] = ()
    min_age: timedelta = timedelta(0)  # rows younger than this stay, whatever the window

    def conditions(self, cutoff: datetime) -> list[sa.ColumnElement[bool]]:
        """Where a row of this target is past its window."""
        return [*self.where, self.at < cutoff]

    def cutoff(self, window_cutoff: datetime | None, now: datetime) -> datetime | None:
        """The cutoff of a pass at ``now`` (its window's, held back by :attr:`min_age`)."""
        if window_cutoff is None:
            return None
        return min(window_cutoff, now - self.min_age) if self.min_age else window_cutoff


def _event_target(status: EventStatus, policy: str) -> Target:
    return Target(
        f"worker_events.{status}",
        policy,
        worker_events,
        (_W.id,),
        _W.updated_at,  # a finished event's last change is when it finished
        (_W.status == str(status),),
    )


def _delivery_target(name: str, at: sa.Column[Any], *where: sa.ColumnElement[bool]) -> Target:
    # a dwell notice names an entity version: while the entity is still in that version its row
    # stays (the scan would otherwise find the entity again and send the notice a second time)
    payload = _D.payload
    dwelling = sa.and_(
        _D.kind == "dwell.breached",
        sa.select(_S.version)
        .where(
            _S.machine == payload["machine"].as_string(),
            _S.entity_id == payload["entity_id"].as_string(),
            _S.version == payload["version"].as_integer(),
        )
        .exists(),
    )
    return Target(
        f"webhook_deliveries.{name}",
        "webhooks",
        webhook_deliveries,
        (_D.id,),
        at,
        (*where, ~dwelling),
        min_age=WEBHOOK_MIN_AGE,
    )


#: The outbox row of a delivery that is still sent or retried, or dead (an operator may send it
#: again): while there is one, the delivery stays.
_DELIVERY_LIVE = (
    sa.select(_O.id)
    .where(
        _O.id == _D.outbox_id,
        _O.status.in_([str(OutboxStatus.PENDING), str(OutboxStatus.DEAD)]),
    )
    .exists()
)


def _action_target(status: OutboxStatus) -> Target:
    return Target(
        f"action_outbox.{status}",
        "actions",
        action_outbox,
        (_O.id,),
        _O.completed_at,
        (_O.status == str(status),),
    )


#: Every target, in the order a pass visits them. Dead events and dead actions stay until an
#: operator handles them (a retry makes them pending, a discard starts the "rejected" or
#: "actions" window); pending rows of any table are never targets.
TARGETS: tuple[Target, ...] = (
    _event_target(EventStatus.COMPLETED, "completed"),
    _event_target(EventStatus.STALE, "completed"),
    _event_target(EventStatus.REJECTED, "rejected"),
    _event_target(EventStatus.CANCELLED, "rejected"),
    _event_target(EventStatus.DISCARDED, "rejected"),
    Target(
        "idempotency_conflicts",
        "rejected",
        idempotency_conflicts,
        (idempotency_conflicts.c.id,),
        idempotency_conflicts.c.created_at,
    ),
    Target(
        "transition_history",
        "history",
        transition_history,
        (transition_history.c.id,),
        transition_history.c.created_at,
    ),
    _action_target(OutboxStatus.DONE),
    _action_target(OutboxStatus.DISCARDED),
    Target("audit_log", "audit", audit_log, (audit_log.c.id,), audit_log.c.at),
    Target(
        "event_rollups",
        "rollups",
        event_rollups,
        (event_rollups.c.minute, event_rollups.c.machine, event_rollups.c.outcome),
        event_rollups.c.minute,
    ),
    # shadow mode: an ended shadow's difference groups, then the shadow (the history window)
    Target(
        "shadow_diffs",
        "history",
        shadow_diffs,
        (shadow_diffs.c.id,),
        shadow_diffs.c.last_seen,
        (
            shadow_diffs.c.shadow_id.in_(
                sa.select(machine_shadows.c.id).where(machine_shadows.c.status != "active")
            ),
        ),
    ),
    Target(
        "machine_shadows",
        "history",
        machine_shadows,
        (machine_shadows.c.id,),
        machine_shadows.c.ended_at,
        (machine_shadows.c.status != "active",),
    ),
    # a live process beats every few seconds: only rows of processes gone that long match
    Target(
        "worker_heartbeats",
        "heartbeats",
        worker_heartbeats,
        (worker_heartbeats.c.worker_id,),
        worker_heartbeats.c.beat_at,
    ),
    # the webhook delivery log: delivered (by when), dropped unsent (its webhook was deleted),
    # and given up (its outbox row discarded by an operator, or already pruned); never one
    # whose outbox row is pending (being sent or retried) or dead
    _delivery_target("delivered", _D.delivered_at, _D.status == "delivered"),
    _delivery_target("dropped", _D.created_at, _D.status == "dropped"),
    _delivery_target(
        "abandoned", _D.created_at, _D.status.in_(["pending", "failing"]), ~_DELIVERY_LIVE
    ),
)


def _key_expression(target: Target) -> sa.ColumnElement[Any]:
    if len(target.key) == 1:
        return target.key[0]
    return sa.tuple_(*target.key)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one :func:`delete_batch` removed."""

    count: int
    last_at: datetime | None  # the newest ``at`` among them: where the next batch starts
    rows: list[dict[str, Any]]  # the rows themselves, when asked for


def _batch_keys(
    conn: Connection, target: Target, cutoff: datetime, limit: int, after: datetime | None
) -> sa.Select[Any]:
    conditions = target.conditions(cutoff)
    if after is not None:
        conditions.append(target.at >= after)
    query = sa.select(*target.key).where(*conditions).order_by(target.at).limit(limit)
    if is_postgres(conn):
        query = query.with_for_update(skip_locked=True)
    return query


def delete_batch(
    conn: Connection,
    target: Target,
    cutoff: datetime,
    limit: int,
    *,
    after: datetime | None = None,
    keep_rows: bool = False,
) -> Batch:
    """Delete the (at most ``limit``) oldest rows of ``target`` older than ``cutoff``, from
    ``after`` on when given (the previous batch's :attr:`Batch.last_at`: the index walk then
    starts past the entries the previous batches deleted, which stay in the index until vacuum).

    The age and the ``where`` are checked again by the delete itself, so a row that changed
    between the pick and the delete (an event replayed by an operator) stays."""
    picked = _batch_keys(conn, target, cutoff, limit, after)
    statement = sa.delete(target.table).where(
        _key_expression(target).in_(picked), *target.conditions(cutoff)
    )
    if keep_rows:
        rows = [dict(r) for r in conn.execute(statement.returning(target.table)).mappings()]
        stamps = [r[target.at.name] for r in rows]
    else:
        rows = []
        stamps = list(conn.execute(statement.returning(target.at)).scalars())
    return Batch(len(stamps), max(stamps) if stamps else None, rows)


def count_due(conn: Connection, target: Target, cutoff: datetime) -> int:
    """How many rows of ``target`` are older than ``cutoff`` (what a dry run reports)."""
    query = sa.select(sa.func.count()).select_from(target.table)
    return int(conn.execute(query.where(*target.conditions(cutoff))).scalar_one())


def target_names() -> Sequence[str]:
    """The name of every target, in pass order."""
    return [t.name for t in TARGETS]


__all__ = [
    "POLICIES",
    "TARGETS",
    "WEBHOOK_MIN_AGE",
    "Batch",
    "Target",
    "count_due",
    "delete_batch",
    "target_names",
]
