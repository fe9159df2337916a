"""Submitting events: validate at the door, insert into ``worker_events``, nudge after commit.

``Producer`` holds the engine, the machine registry (for validation) and a nudger. The module
functions in :mod:`pystator.worker` use the process's default producer built from settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine

from pystator.clock import Clock, as_utc, utc_now
from pystator.fsm_core.errors import InvalidEventError
from pystator.fsm_core.records import EntityKey
from pystator.settings import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_CONTEXT_BYTES
from pystator.stores.sql import submit_queries
from pystator.stores.sql.connections import (
    autocommit,
    driver_autocommit,
    has_driver_path,
    transaction,
)
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.rows import NewEvent
from pystator.stores.sql.schema import ENTITY_ID_LENGTH, IDEMPOTENCY_KEY_LENGTH
from pystator.worker.nudge import Nudger, NullNudger
from pystator.worker.registry import MachineRegistry

_NUDGES_KEY = "pystator_pending_nudges"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSpec:
    """One event of a :func:`submit_events` batch (same fields as ``submit_event``)."""

    machine: str
    entity_id: str
    trigger: str
    context: Mapping[str, Any] | None = None
    fires_at: datetime | None = None
    idempotency_key: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """What a submission got back: the event id, and whether it was a duplicate."""

    event_id: int
    duplicate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Input limits enforced at the door."""

    max_context_bytes: int = DEFAULT_MAX_CONTEXT_BYTES
    max_entity_id_length: int = ENTITY_ID_LENGTH
    max_idempotency_key_length: int = IDEMPOTENCY_KEY_LENGTH


def _spec(item: EventSpec | Mapping[str, Any]) -> EventSpec:
    if isinstance(item, EventSpec):
        return item
    data = dict(item)
    if "machine_name" in data:
        data["machine"] = data.pop("machine_name")
    try:
        return EventSpec(**data)
    except TypeError as exc:
        raise InvalidEventError(f"bad event in batch: {exc}") from exc


@dataclass
class Producer:
    """Validates and stores events, then nudges workers."""

    engine: Engine
    machines: MachineRegistry
    nudger: Nudger = field(default_factory=NullNudger)
    limits: Limits = field(default_factory=Limits)
    clock: Clock = utc_now

    # --- validation --------------------------------------------------------------------------

    def validate(self, spec: EventSpec, now: datetime) -> NewEvent:
        """Refuse bad input with :class:`InvalidEventError`; return the row to insert."""
        machine = self.machines.get(spec.machine)
        if not machine.has_trigger(spec.trigger):
            raise InvalidEventError(
                f"machine {spec.machine!r} has no trigger {spec.trigger!r}",
                details={"machine": spec.machine, "trigger": spec.trigger},
            )
        self._check_entity_id(spec.entity_id)
        self._check_key(spec.idempotency_key)
        if spec.max_attempts < 1:
            raise InvalidEventError(f"max_attempts must be at least 1, got {spec.max_attempts}")
        context = self._check_context(spec.context)
        return NewEvent(
            machine=spec.machine,
            entity_id=spec.entity_id,
            trigger=spec.trigger,
            context=context,
            fires_at=_aware(spec.fires_at) if spec.fires_at is not None else now,
            idempotency_key=spec.idempotency_key,
            max_attempts=spec.max_attempts,
        )

    def _check_entity_id(self, entity_id: object) -> None:
        if not isinstance(entity_id, str) or not entity_id.strip():
            raise InvalidEventError("entity_id must be a non-empty string")
        if len(entity_id) > self.limits.max_entity_id_length:
            raise InvalidEventError(
                f"entity_id is {len(entity_id)} characters long; the limit is "
                f"{self.limits.max_entity_id_length}"
            )

    def _check_key(self, key: object) -> None:
        if key is None:
            return
        if not isinstance(key, str) or not key:
            raise InvalidEventError("idempotency_key must be a non-empty string or None")
        if len(key) > self.limits.max_idempotency_key_length:
            raise InvalidEventError(
                f"idempotency_key is longer than {self.limits.max_idempotency_key_length}"
            )

    def _check_context(self, context: Mapping[str, Any] | None) -> dict[str, Any]:
        if context is None:
            return {}
        if not isinstance(context, Mapping):
            raise InvalidEventError(f"context must be a mapping, got {type(context).__name__}")
        try:
            encoded = json.dumps(dict(context), allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise InvalidEventError(f"context is not JSON-serializable: {exc}") from exc
        size = len(encoded.encode("utf-8"))
        if size > self.limits.max_context_bytes:
            raise InvalidEventError(
                f"context is {size} bytes of JSON; the limit is {self.limits.max_context_bytes}"
                " (PYSTATOR_MAX_CONTEXT_BYTES)"
            )
        return dict(context)

    # --- submission --------------------------------------------------------------------------

    def submit(self, spec: EventSpec) -> Receipt:
        """Insert one event in its own transaction and nudge after commit."""
        if not has_driver_path(self.engine):
            return self.submit_many([spec])[0]
        # The hot path: one autocommit statement on a raw psycopg cursor. The statement has
        # committed (durably: synchronous_commit as configured) when execute returns.
        now = self.clock()
        row = self.validate(spec, now)
        with translate_errors("submit"), driver_autocommit(self.engine) as conn:
            inserted = submit_queries.insert_one(conn, row, now)
        self.nudger.nudge(_due_keys([row], [inserted], now))
        return Receipt(event_id=inserted[0], duplicate=inserted[1])

    def submit_many(self, specs: Iterable[EventSpec | Mapping[str, Any]]) -> list[Receipt]:
        """Insert a batch in one transaction (one statement per 2,000 rows); nudge after commit."""
        now = self.clock()
        rows = [self.validate(_spec(s), now) for s in specs]
        if not rows:
            return []
        # One statement is atomic on its own: skip BEGIN/COMMIT round trips for small batches.
        single = submit_queries.is_single_statement(rows)
        scope = autocommit(self.engine) if single else transaction(self.engine)
        with translate_errors("submit"), scope as conn:
            inserted = submit_queries.insert_events(conn, rows, now)
        self.nudger.nudge(_due_keys(rows, inserted, now))
        return [Receipt(event_id=i, duplicate=d) for i, d in inserted]

    def enqueue(self, conn_or_session: Any, spec: EventSpec) -> Receipt:
        """Insert inside the caller's transaction: the event exists iff that transaction commits.

        ``conn_or_session`` is a SQLAlchemy ``Connection`` or ``Session`` on the pystator
        database. The nudge is sent when it commits (and dropped on rollback).
        """
        now = self.clock()
        row = self.validate(spec, now)
        conn = _connection_of(conn_or_session)
        with translate_errors("enqueue"):
            ((event_id, duplicate),) = submit_queries.insert_events(conn, [row], now)
        if not duplicate and row.fires_at <= now:
            self._nudge_on_commit(conn_or_session, (row.machine, row.entity_id))
        return Receipt(event_id=event_id, duplicate=duplicate)

    def _nudge_on_commit(self, target: Any, key: EntityKey) -> None:
        info = target.info
        pending = info.get(_NUDGES_KEY)
        if pending is None:
            pending = info[_NUDGES_KEY] = []
            _listen_commit(target, self.nudger)
        pending.append(key)


def _listen_commit(target: Any, nudger: Nudger) -> None:
    is_connection = isinstance(target, Connection)

    def publish(*_args: Any) -> None:
        nudger.nudge(target.info.pop(_NUDGES_KEY, None) or [])

    def drop(*_args: Any) -> None:
        target.info.pop(_NUDGES_KEY, None)

    # A Session has a true after-commit hook; a Connection only "commit" (just before COMMIT),
    # so a worker may look a moment too early — then the relay's grace period covers it.
    sa_event.listen(target, "commit" if is_connection else "after_commit", publish, once=True)
    sa_event.listen(target, "rollback" if is_connection else "after_rollback", drop, once=True)


def _connection_of(conn_or_session: Any) -> Connection:
    if isinstance(conn_or_session, Connection):
        return conn_or_session
    connection = getattr(conn_or_session, "connection", None)
    if callable(connection):
        conn = connection()
        if isinstance(conn, Connection):
            return conn
    raise InvalidEventError(
        "enqueue needs a SQLAlchemy Connection or Session, got " + type(conn_or_session).__name__
    )


def _due_keys(
    rows: Sequence[NewEvent], inserted: Sequence[tuple[int, bool]], now: datetime
) -> list[EntityKey]:
    return [
        (row.machine, row.entity_id)
        for row, (_id, duplicate) in zip(rows, inserted, strict=True)
        if not duplicate and row.fires_at <= now
    ]


def _aware(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidEventError(f"fires_at must be a datetime, got {type(value).__name__}")
    return as_utc(value)


__all__ = ["EventSpec", "Limits", "Producer", "Receipt"]
