"""Submitting events: validate at the door, insert into ``worker_events``, nudge after commit.

``Producer`` holds the engine, the machine registry (for validation) and a nudger. The module
functions in :mod:`pystator.worker` use the process's default producer built from settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine

from pystator.config import tracing
from pystator.config.logs import get_logger
from pystator.config.settings import DEFAULT_MAX_ATTEMPTS
from pystator.fleet import door
from pystator.fleet.door import Limits
from pystator.fleet.nudge import Nudger, NullNudger
from pystator.fsm_core.apply_data import APPLY_DATA_TRIGGER
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import IdempotencyConflictError, InvalidEventError, StoreError
from pystator.fsm_core.records import EntityKey, EventKind
from pystator.registry.machines import MachineRegistry
from pystator.stores.sql import submit_queries
from pystator.stores.sql.connections import (
    autocommit,
    driver_autocommit,
    has_driver_path,
    transaction,
)
from pystator.stores.sql.engine import is_sqlite, translate_errors
from pystator.stores.sql.rows import Inserted, NewEvent

_NUDGES_KEY = "pystator_pending_nudges"

log = get_logger("pystator.producer")


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSpec:
    """One event of a :func:`submit_events` batch (same fields as ``submit_event``)."""

    machine: str
    entity_id: str
    trigger: str = ""  # required for a named event; ignored for an apply-data
    context: Mapping[str, Any] | None = None
    fires_at: datetime | None = None
    idempotency_key: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    #: ``apply_data``: ``context`` is a data update routed by the machine's ``when`` rules
    #: (``trigger`` is then only its label, :data:`APPLY_DATA_TRIGGER`)
    kind: str = EventKind.EVENT


class Receipt(int):
    """What a submission got back: the event id (this int), and whether it was a duplicate.

    ``duplicate`` is True when the idempotency key already belonged to this same event: nothing
    new was stored, and the id is the original event's.
    """

    duplicate: bool

    def __new__(cls, event_id: int, duplicate: bool = False) -> Receipt:
        receipt = super().__new__(cls, event_id)
        receipt.duplicate = duplicate
        return receipt

    @property
    def event_id(self) -> int:
        """The event's id (the receipt itself, as a plain int)."""
        return int(self)

    def __repr__(self) -> str:
        return f"Receipt({int(self)}, duplicate={self.duplicate})"


def _spec(item: EventSpec | Mapping[str, Any]) -> EventSpec:
    if isinstance(item, EventSpec):
        return item
    to_spec = getattr(item, "to_spec", None)  # a WorkerEvent (pystator.fleet.models)
    if callable(to_spec):
        spec = to_spec()
        if isinstance(spec, EventSpec):
            return spec
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
    #: None: rows are stamped with the database's clock (db_clock); a clock given stands in.
    clock: Clock | None = None
    #: This host's clock: only for what no database statement decides (the door's ten-year
    #: range of ``fires_at``, when a refused idempotency key was seen).
    host_clock: Clock = utc_now

    # --- validation --------------------------------------------------------------------------

    def validate(self, spec: EventSpec, now: datetime | None) -> NewEvent:
        """Refuse bad input with :class:`InvalidEventError` (see :mod:`pystator.fleet.door`);
        return the row to insert (``fires_at`` None, unless given: due when the database stamps
        it; ``now``, when given, stamps it instead)."""
        limits = self.limits
        machine = self.machines.get(spec.machine)
        kind = _kind(spec.kind)
        if kind == EventKind.APPLY_DATA:
            trigger = APPLY_DATA_TRIGGER  # the transition taken is chosen by ``when`` rules
        else:
            named = door.check_name("trigger", spec.trigger, limit=limits.max_trigger_length)
            assert named is not None
            trigger = named
            if not self.machines.accepts_trigger(spec.machine, machine, trigger):
                raise door.refuse(
                    "trigger", "unknown", f"machine {spec.machine!r} has no trigger {trigger!r}"
                )
        entity_id = door.check_name("entity_id", spec.entity_id, limit=limits.max_entity_id_length)
        assert entity_id is not None
        key = door.check_name(
            "idempotency_key",
            spec.idempotency_key,
            limit=limits.max_idempotency_key_length,
            required=False,
        )
        context = door.check_context(spec.context, limits)
        return NewEvent(
            machine=spec.machine,
            entity_id=entity_id,
            trigger=trigger,
            context=context.value,
            encoded_context=context.encoded,
            fires_at=now
            if spec.fires_at is None
            # the door's range is ten years: this host's clock is close enough for it
            else door.check_fires_at(spec.fires_at, now or self.host_clock()),
            idempotency_key=key,
            fingerprint=None
            if key is None
            else door.fingerprint(entity_id, trigger, context.encoded),
            max_attempts=door.check_max_attempts(spec.max_attempts, limits),
            traceparent=tracing.current_traceparent(),
            kind=kind,
        )

    # --- submission --------------------------------------------------------------------------

    def submit(self, spec: EventSpec) -> Receipt:
        """Insert one event in its own transaction and nudge after commit."""
        if not has_driver_path(self.engine):
            return self.submit_many([spec])[0]
        # The hot path: one autocommit statement on a raw psycopg cursor. The statement has
        # committed (durably: synchronous_commit as configured) when execute returns.
        now = self._now()
        with tracing.submitting(_attributes(spec)):
            row = self.validate(spec, now)
            with translate_errors("submit"), driver_autocommit(self.engine) as conn:
                inserted = submit_queries.insert_one(conn, row, now)
        self._refuse_conflicts([row], [inserted])
        self.nudger.nudge(_due_keys([inserted], [row]), through=inserted.id)
        return Receipt(inserted.id, inserted.duplicate)

    def submit_many(self, specs: Iterable[EventSpec | Mapping[str, Any]]) -> list[Receipt]:
        """Insert a batch in one transaction (one statement per 2,000 rows); nudge after commit."""
        now = self._now()
        checked = [_spec(s) for s in specs]
        if not checked:
            return []
        with tracing.submitting({**_attributes(checked[0]), "pystator.events": len(checked)}):
            return self._submit_many(checked, now)

    def _submit_many(self, specs: Sequence[EventSpec], now: datetime | None) -> list[Receipt]:
        rows = [self.validate(s, now) for s in specs]
        # One statement is atomic on its own: skip BEGIN/COMMIT round trips for small batches
        # (keyed batches of several events keep a transaction: a conflict must undo them all).
        keyed = len(rows) > 1 and any(r.idempotency_key is not None for r in rows)
        single = submit_queries.is_single_statement(rows) and not keyed
        scope = autocommit(self.engine) if single else transaction(self.engine)
        try:
            with translate_errors("submit"), scope as conn:
                inserted = submit_queries.insert_events(conn, rows, now)
                if any(i.conflict for i in inserted):
                    raise _Refused(inserted)  # all or nothing: rolls the batch back
        except _Refused as refused:
            inserted = refused.inserted
        self._refuse_conflicts(rows, inserted)
        self.nudger.nudge(
            _due_keys(inserted, rows), through=max((i.id for i in inserted), default=None)
        )
        return [Receipt(i.id, i.duplicate) for i in inserted]

    def enqueue(self, conn_or_session: Any, spec: EventSpec) -> Receipt:
        """Insert inside the caller's transaction: the event exists iff that transaction commits.

        ``conn_or_session`` is a SQLAlchemy ``Connection`` or ``Session`` on the pystator
        database. The nudge is sent when it commits (and dropped on rollback).
        """
        now = self._now()
        conn = _connection_of(conn_or_session)
        with tracing.submitting(_attributes(spec)):
            row = self.validate(spec, now)
            with translate_errors("enqueue"):
                (inserted,) = submit_queries.insert_events(conn, [row], now)
        self._refuse_conflicts([row], [inserted])
        if not inserted.duplicate and inserted.due:
            self._nudge_on_commit(conn_or_session, (row.machine, row.entity_id))
        return Receipt(inserted.id, inserted.duplicate)

    def _now(self) -> datetime | None:
        """The time to stamp rows with: the injected clock's, else None on PostgreSQL (the
        server stamps them), this host's on SQLite (its database's clock)."""
        if self.clock is not None:
            return self.clock()
        return utc_now() if is_sqlite(self.engine.url) else None

    def _refuse_conflicts(self, rows: Sequence[NewEvent], inserted: Sequence[Inserted]) -> None:
        """Record reused keys (for operators) and raise :class:`IdempotencyConflictError`."""
        refused = [(r, i.id) for r, i in zip(rows, inserted, strict=True) if i.conflict]
        if not refused:
            return
        now = self.clock() if self.clock is not None else self.host_clock()
        try:
            with translate_errors("record conflicts"), transaction(self.engine) as conn:
                submit_queries.record_conflicts(conn, refused, now)
        except StoreError as exc:  # the refusal stands; only its record is lost
            log.warning("idempotency_conflict_not_recorded", error=str(exc))
        row, holder = refused[0]
        raise IdempotencyConflictError(
            f"idempotency_key {row.idempotency_key!r} of machine {row.machine!r} belongs to "
            f"event {holder}, a different event (another entity, trigger or context); "
            "nothing was stored",
            machine=row.machine,
            idempotency_key=row.idempotency_key or "",
            event_id=holder,
        )

    def _nudge_on_commit(self, target: Any, key: EntityKey) -> None:
        info = target.info
        pending = info.get(_NUDGES_KEY)
        if pending is None:
            pending = info[_NUDGES_KEY] = []
            _listen_commit(target, self.nudger)
        pending.append(key)


class _Refused(Exception):
    """Raised inside a batch's transaction to roll it back when one of its keys conflicts."""

    def __init__(self, inserted: list[Inserted]) -> None:
        super().__init__("idempotency conflict")
        self.inserted = inserted


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


def _kind(kind: object) -> EventKind:
    """``kind`` as an :class:`EventKind`; refused at the door when it is none."""
    try:
        return EventKind(str(kind))
    except ValueError:
        accepted = ", ".join(k.value for k in EventKind)
        raise door.refuse("kind", "unknown", f"must be one of: {accepted}") from None


def _attributes(spec: EventSpec) -> dict[str, Any]:
    """What the ``pystator submit`` span says about an event."""
    return {
        "pystator.machine": str(spec.machine),
        "pystator.entity_id": str(spec.entity_id),
        "pystator.trigger": str(spec.trigger),
    }


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


def _due_keys(inserted: Sequence[Inserted], rows: Sequence[NewEvent] = ()) -> list[EntityKey]:
    """The entities of the new events that were due when inserted (by the inserting
    statement's clock: the database's)."""
    return [
        (row.machine, row.entity_id)
        for row, result in zip(rows, inserted, strict=True)
        if not result.duplicate and not result.conflict and result.due
    ]


__all__ = ["EventSpec", "Limits", "Producer", "Receipt"]
