"""Every query on ``worker_events`` and ``action_outbox``, named by intent.

The worker loop, the producer, the relay and the operator commands call these inside their own
transactions and never compose SQL themselves. Times are passed in (the caller's clock), so the
same queries behave identically on PostgreSQL and SQLite.

Event statuses: ``pending`` → ``completed`` | ``rejected`` | ``stale`` | ``dead`` | ``cancelled`` |
``discarded``. Outbox statuses: ``pending`` → ``done`` | ``dead``.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pystator.fsm_core.records import ArmedTimer, EventOrigin
from pystator.stores.sql.entity_queries import as_utc
from pystator.stores.sql.schema import action_outbox, worker_events

_W = worker_events.c
_O = action_outbox.c

PENDING = "pending"
COMPLETED = "completed"
REJECTED = "rejected"
STALE = "stale"
DEAD = "dead"
CANCELLED = "cancelled"
DISCARDED = "discarded"
EVENT_STATUSES = (PENDING, COMPLETED, REJECTED, STALE, DEAD, CANCELLED, DISCARDED)
#: Statuses an operator may send back to ``pending``.
REPLAYABLE = (REJECTED, STALE, DEAD, DISCARDED, CANCELLED)
#: Statuses an operator may discard.
DISCARDABLE = (PENDING, DEAD, REJECTED)

OUTBOX_PENDING = "pending"
OUTBOX_DONE = "done"
OUTBOX_DEAD = "dead"

ORIGIN_SUBMIT = "submit"

#: Rows per INSERT statement (keeps PostgreSQL under its 65,535 bind parameter limit).
INSERT_CHUNK_ROWS = 2000
#: Entities fetched per claim attempt before trying their locks (PostgreSQL).
CLAIM_OVERSCAN = 4


# --- value objects ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    """An event to insert into ``worker_events``."""

    machine: str
    entity_id: str
    trigger: str
    context: Mapping[str, Any] = field(default_factory=dict)
    fires_at: datetime
    origin: str = ORIGIN_SUBMIT
    idempotency_key: str | None = None
    max_attempts: int = 5
    timer_key: str | None = None
    timer_state: str | None = None
    timer_entry: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    """One ``worker_events`` row as read back."""

    id: int
    machine: str
    entity_id: str
    trigger: str
    context: Mapping[str, Any]
    status: str
    origin: str
    idempotency_key: str | None
    duplicate_count: int
    attempts: int
    max_attempts: int
    fires_at: datetime
    timer_key: str | None
    timer_state: str | None
    timer_entry: int | None
    errors: tuple[Mapping[str, Any], ...]
    outcome: Mapping[str, Any] | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (operator commands)."""
        data = {name: getattr(self, name) for name in self.__slots__}
        for key in ("fires_at", "created_at", "updated_at", "completed_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        data["errors"] = [dict(e) for e in self.errors]
        data["context"] = dict(self.context)
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedEvent:
    """An event leaving ``pending`` for good: completed, rejected or stale."""

    id: int
    status: str
    outcome: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAction:
    """An action to run after commit (one ``action_outbox`` row)."""

    event_id: int | None
    machine: str
    entity_id: str
    entity_version: int
    action: str
    phase: str
    params: Mapping[str, Any]
    context: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxRow:
    """One ``action_outbox`` row as read back; ``id`` is the action's dedup token."""

    id: int
    event_id: int | None
    machine: str
    entity_id: str
    entity_version: int
    action: str
    phase: str
    params: Mapping[str, Any]
    context: Mapping[str, Any]
    attempts: int
    errors: tuple[Mapping[str, Any], ...]


EntityKey = tuple[str, str]


def _event_from_row(row: Any) -> EventRow:
    return EventRow(
        id=int(row["id"]),
        machine=row["machine"],
        entity_id=row["entity_id"],
        trigger=row["trigger"],
        context=row["context"] or {},
        status=row["status"],
        origin=row["origin"],
        idempotency_key=row["idempotency_key"],
        duplicate_count=int(row["duplicate_count"]),
        attempts=int(row["attempts"]),
        max_attempts=int(row["max_attempts"]),
        fires_at=as_utc(row["fires_at"]),  # type: ignore[arg-type]
        timer_key=row["timer_key"],
        timer_state=row["timer_state"],
        timer_entry=row["timer_entry"],
        errors=tuple(row["errors"] or ()),
        outcome=row["outcome"],
        created_at=as_utc(row["created_at"]),  # type: ignore[arg-type]
        updated_at=as_utc(row["updated_at"]),  # type: ignore[arg-type]
        completed_at=as_utc(row["completed_at"]),
    )


def _outbox_from_row(row: Any) -> OutboxRow:
    return OutboxRow(
        id=int(row["id"]),
        event_id=row["event_id"],
        machine=row["machine"],
        entity_id=row["entity_id"],
        entity_version=int(row["entity_version"]),
        action=row["action"],
        phase=row["phase"],
        params=row["params"] or {},
        context=row["context"] or {},
        attempts=int(row["attempts"]),
        errors=tuple(row["errors"] or ()),
    )


def _chunks(items: Sequence[Any], size: int = INSERT_CHUNK_ROWS) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


# --- submission ------------------------------------------------------------------------------


def _event_values(event: NewEvent, now: datetime) -> dict[str, Any]:
    return {
        "machine": event.machine,
        "entity_id": event.entity_id,
        "trigger": event.trigger,
        "context": dict(event.context),
        "status": PENDING,
        "origin": event.origin,
        "idempotency_key": event.idempotency_key,
        "duplicate_count": 0,
        "attempts": 0,
        "max_attempts": event.max_attempts,
        "fires_at": event.fires_at,
        "timer_key": event.timer_key,
        "timer_state": event.timer_state,
        "timer_entry": event.timer_entry,
        "errors": [],
        "outcome": None,
        "created_at": now,
        "updated_at": now,
    }


def _upsert(conn: Connection) -> sa.Executable:
    insert = postgresql.insert if _is_postgres(conn) else sqlite.insert
    statement = insert(worker_events)
    return statement.on_conflict_do_update(
        index_elements=[_W.machine, _W.idempotency_key],
        set_={"duplicate_count": _W.duplicate_count + 1},
    ).returning(_W.id, _W.duplicate_count, _W.idempotency_key, _W.machine)


# PostgreSQL: one statement with one array parameter per column, whatever the batch size (a
# multi-row VALUES statement costs far more to build and parse). WITH ORDINALITY keeps ids in
# submission order.
_UPSERT_FROM_ARRAYS = sa.text(
    """
    INSERT INTO worker_events (machine, entity_id, trigger, context, status, origin,
        idempotency_key, duplicate_count, attempts, max_attempts, fires_at, timer_key,
        timer_state, timer_entry, errors, created_at, updated_at)
    SELECT d.machine, d.entity_id, d.trigger, CAST(d.context AS jsonb), 'pending', d.origin,
        d.idempotency_key, 0, 0, d.max_attempts, d.fires_at, d.timer_key, d.timer_state,
        d.timer_entry, CAST('[]' AS jsonb), :now, :now
    FROM unnest(CAST(:machines AS text[]), CAST(:entity_ids AS text[]),
                CAST(:triggers AS text[]), CAST(:contexts AS text[]), CAST(:origins AS text[]),
                CAST(:keys AS text[]), CAST(:max_attempts AS integer[]),
                CAST(:fires_at AS timestamptz[]), CAST(:timer_keys AS text[]),
                CAST(:timer_states AS text[]), CAST(:timer_entries AS bigint[]))
         WITH ORDINALITY AS d(machine, entity_id, trigger, context, origin, idempotency_key,
                              max_attempts, fires_at, timer_key, timer_state, timer_entry, ord)
    ORDER BY d.ord
    ON CONFLICT (machine, idempotency_key)
    DO UPDATE SET duplicate_count = worker_events.duplicate_count + 1
    RETURNING id, duplicate_count, idempotency_key, machine
    """
)


# One event (the common producer call): plain scalar parameters, a statement the server plans
# far more cheaply than the unnest form. Written in psycopg's placeholder style for the raw-cursor
# path (:func:`insert_one`); SQLAlchemy connections run the same text with ``:name`` binds.
_UPSERT_ONE_SQL = """
    INSERT INTO worker_events (machine, entity_id, trigger, context, status, origin,
        idempotency_key, duplicate_count, attempts, max_attempts, fires_at, timer_key,
        timer_state, timer_entry, errors, created_at, updated_at)
    VALUES (%(machine)s, %(entity_id)s, %(trigger)s, CAST(%(context)s AS jsonb), 'pending',
        %(origin)s, %(idempotency_key)s, 0, 0, %(max_attempts)s, %(fires_at)s, %(timer_key)s,
        %(timer_state)s, %(timer_entry)s, CAST('[]' AS jsonb), %(now)s, %(now)s)
    ON CONFLICT (machine, idempotency_key)
    DO UPDATE SET duplicate_count = worker_events.duplicate_count + 1
    RETURNING id, duplicate_count
"""
_UPSERT_ONE = sa.text(re.sub(r"%\((\w+)\)s", r":\1", _UPSERT_ONE_SQL))


def _context_json(event: NewEvent) -> str:
    return json.dumps(dict(event.context))


# (scalar parameter of _UPSERT_ONE, array parameter of _UPSERT_FROM_ARRAYS, value of an event)
_EVENT_PARAMS: tuple[tuple[str, str, Callable[[NewEvent], Any]], ...] = (
    ("machine", "machines", operator.attrgetter("machine")),
    ("entity_id", "entity_ids", operator.attrgetter("entity_id")),
    ("trigger", "triggers", operator.attrgetter("trigger")),
    ("context", "contexts", _context_json),
    ("origin", "origins", operator.attrgetter("origin")),
    ("idempotency_key", "keys", operator.attrgetter("idempotency_key")),
    ("max_attempts", "max_attempts", operator.attrgetter("max_attempts")),
    ("fires_at", "fires_at", operator.attrgetter("fires_at")),
    ("timer_key", "timer_keys", operator.attrgetter("timer_key")),
    ("timer_state", "timer_states", operator.attrgetter("timer_state")),
    ("timer_entry", "timer_entries", operator.attrgetter("timer_entry")),
)


def _one_params(event: NewEvent, now: datetime) -> dict[str, Any]:
    params: dict[str, Any] = {scalar: value(event) for scalar, _, value in _EVENT_PARAMS}
    params["now"] = now
    return params


def _array_params(events: Sequence[NewEvent], now: datetime) -> dict[str, Any]:
    params: dict[str, Any] = {
        array: [value(e) for e in events] for _, array, value in _EVENT_PARAMS
    }
    params["now"] = now
    return params


def insert_events(
    conn: Connection, events: Sequence[NewEvent], now: datetime
) -> list[tuple[int, bool]]:
    """Insert events in one statement per chunk; returns ``(id, duplicate)`` in input order.

    A duplicate ``(machine, idempotency_key)`` does not insert: it bumps the first event's
    ``duplicate_count`` and returns that event's id with ``duplicate=True``. The returned
    ``duplicate_count`` tells the two apart (0 only for a fresh row), on PostgreSQL and SQLite.
    """
    results: list[tuple[int, bool]] = []
    for chunk in _chunks(events):
        results.extend(_insert_chunk(conn, chunk, now))
    return results


def is_single_statement(events: Sequence[NewEvent]) -> bool:
    """True when :func:`insert_events` writes ``events`` with exactly one statement."""
    if len(events) > INSERT_CHUNK_ROWS:
        return False
    keys = [(e.machine, e.idempotency_key) for e in events if e.idempotency_key is not None]
    return len(keys) == len(set(keys))


def insert_one(driver_conn: Any, event: NewEvent, now: datetime) -> tuple[int, bool]:
    """Insert one event through a raw psycopg connection in autocommit mode (PostgreSQL).

    Same statement and result as :func:`insert_events` for a single event, minus SQLAlchemy's
    per-execute overhead (the producer's hot path). psycopg prepares the statement server-side
    after a few runs on a connection. Returns ``(id, duplicate)``.
    """
    row = driver_conn.execute(_UPSERT_ONE_SQL, _one_params(event, now)).fetchone()
    return int(row[0]), int(row[1]) > 0


def _insert_chunk(
    conn: Connection, events: Sequence[NewEvent], now: datetime
) -> list[tuple[int, bool]]:
    # Repeats of one key inside a batch would make the upsert touch a row twice (an error on
    # PostgreSQL): send each key once, then count the repeats as duplicates of it.
    first_index: dict[tuple[str, str], int] = {}
    unique: list[NewEvent] = []
    repeat_of: dict[int, int] = {}
    for index, event in enumerate(events):
        if event.idempotency_key is not None:
            key = (event.machine, event.idempotency_key)
            if key in first_index:
                repeat_of[index] = first_index[key]
                continue
            first_index[key] = len(unique)
        unique.append(event)
    returned: Sequence[Any]
    if _is_postgres(conn) and len(unique) == 1:
        event_id, dup_count = conn.execute(_UPSERT_ONE, _one_params(unique[0], now)).one()
        returned = [(event_id, dup_count, unique[0].idempotency_key, unique[0].machine)]
    elif _is_postgres(conn):
        returned = conn.execute(_UPSERT_FROM_ARRAYS, _array_params(unique, now)).all()
    else:
        returned = conn.execute(_upsert(conn), [_event_values(e, now) for e in unique]).all()
    by_position = _match_returned(conn, unique, returned)
    out: list[tuple[int, bool]] = []
    position = 0
    for index in range(len(events)):
        if index in repeat_of:
            event_id = by_position[repeat_of[index]][0]
            out.append((event_id, True))
        else:
            out.append(by_position[position])
            position += 1
    if repeat_of:
        _count_repeats(conn, [out[i][0] for i in repeat_of])
    return out


def _match_returned(
    conn: Connection, unique: Sequence[NewEvent], returned: Sequence[Any]
) -> list[tuple[int, bool]]:
    """Map RETURNING rows to input positions: keyed rows by key, the others by ascending id."""
    keyed = {
        (row[3], row[2]): (int(row[0]), int(row[1]) > 0) for row in returned if row[2] is not None
    }
    plain = sorted(int(row[0]) for row in returned if row[2] is None)
    plain_iter = iter(plain)
    matched: list[tuple[int, bool]] = []
    for event in unique:
        if event.idempotency_key is None:
            matched.append((next(plain_iter), False))
        else:
            matched.append(keyed[(event.machine, event.idempotency_key)])
    if len(returned) != len(unique):  # pragma: no cover - a driver contract violation
        raise RuntimeError("worker_events insert returned an unexpected number of rows")
    del conn
    return matched


def _count_repeats(conn: Connection, ids: Sequence[int]) -> None:
    for event_id in ids:
        conn.execute(
            sa.update(worker_events)
            .where(_W.id == event_id)
            .values(duplicate_count=_W.duplicate_count + 1)
        )


def insert_timer_events(
    conn: Connection, armed: Sequence[ArmedTimer], now: datetime, *, max_attempts: int = 5
) -> list[tuple[int, bool]]:
    """Store armed timers as future events (origin ``timer``); re-arming one is a no-op.

    The idempotency key is the deterministic ``timer_id``, so a timer armed twice (a redelivered
    batch, a recomputed transition) is counted as a duplicate instead of firing twice.
    """
    events = [
        NewEvent(
            machine=t.machine,
            entity_id=t.entity_id,
            trigger=t.trigger,
            fires_at=t.due_at or now,
            origin=EventOrigin.TIMER,
            idempotency_key=t.timer_id,
            max_attempts=max_attempts,
            timer_key=t.key,
            timer_state=t.state,
            timer_entry=t.entry,
        )
        for t in armed
    ]
    return insert_events(conn, events, now) if events else []


# --- claiming and applying -------------------------------------------------------------------


def _due_heads(now: datetime) -> sa.Select[Any]:
    """Entities whose oldest pending event is due (a waiting retry holds its entity back)."""
    heads = (
        sa.select(_W.machine, _W.entity_id, sa.func.min(_W.id).label("head"))
        .where(_W.status == PENDING)
        .group_by(_W.machine, _W.entity_id)
        .subquery("heads")
    )
    head_event = worker_events.alias("head_event")
    return (
        sa.select(heads.c.machine, heads.c.entity_id, heads.c.head)
        .join(head_event, head_event.c.id == heads.c.head)
        .where(head_event.c.fires_at <= now)
        .order_by(heads.c.head)
    )


def _lock_expr(machine: Any, entity_id: Any) -> sa.ColumnElement[Any]:
    key = sa.func.hashtextextended(sa.cast(machine, sa.Text) + "/" + entity_id, 0)
    return sa.func.pg_try_advisory_xact_lock(key)


def claim_entities(conn: Connection, now: datetime, limit: int) -> list[EntityKey]:
    """Entities with due pending events that this transaction now owns, oldest first.

    On PostgreSQL each is guarded by a transaction-scoped advisory lock, so two workers never
    work on one entity at once; entities locked by others are skipped. On SQLite the transaction
    itself (``BEGIN IMMEDIATE``) is the lock.
    """
    if not _is_postgres(conn):
        rows = conn.execute(_due_heads(now).limit(limit)).all()
        return [(r[0], r[1]) for r in rows]
    candidates = _due_heads(now).limit(limit * CLAIM_OVERSCAN).subquery("candidates")
    query = (
        sa.select(candidates.c.machine, candidates.c.entity_id)
        .where(_lock_expr(candidates.c.machine, candidates.c.entity_id))
        .limit(limit)
    )
    return [(r[0], r[1]) for r in conn.execute(query).all()]


def lock_entity(conn: Connection, machine: str, entity_id: str) -> bool:
    """Take this entity's lock for the transaction; False when another worker holds it."""
    if not _is_postgres(conn):
        return True
    literal = sa.select(_lock_expr(sa.literal(machine, sa.Text), sa.literal(entity_id, sa.Text)))
    return bool(conn.execute(literal).scalar())


def has_due_events(conn: Connection, machine: str, entity_id: str, now: datetime) -> bool:
    """True when the entity's oldest pending event is due."""
    head = conn.execute(
        sa.select(_W.fires_at)
        .where(_W.machine == machine, _W.entity_id == entity_id, _W.status == PENDING)
        .order_by(_W.id)
        .limit(1)
    ).scalar_one_or_none()
    return head is not None and as_utc(head) <= now  # type: ignore[operator]


def pending_events_for(
    conn: Connection, machine: str, entity_id: str, now: datetime, *, limit: int = 100
) -> list[EventRow]:
    """The entity's pending events in id order, up to (not including) the first not yet due."""
    return pending_events_for_many(conn, [(machine, entity_id)], now, limit=limit).get(
        (machine, entity_id), []
    )


def pending_events_for_many(
    conn: Connection, keys: Sequence[EntityKey], now: datetime, *, limit: int = 100
) -> dict[EntityKey, list[EventRow]]:
    """:func:`pending_events_for` for many entities in one query (at most ``limit`` each)."""
    if not keys:
        return {}
    ranked = (
        sa.select(
            worker_events,
            sa.func.row_number()
            .over(partition_by=(_W.machine, _W.entity_id), order_by=_W.id)
            .label("rank"),
        )
        .where(_W.status == PENDING, sa.tuple_(_W.machine, _W.entity_id).in_(list(keys)))
        .subquery("ranked")
    )
    query = (
        sa.select(ranked)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.machine, ranked.c.entity_id, ranked.c.id)
    )
    out: dict[EntityKey, list[EventRow]] = {}
    blocked: set[EntityKey] = set()
    for row in conn.execute(query).mappings():
        event = _event_from_row(row)
        key = (event.machine, event.entity_id)
        if key in blocked:
            continue
        if event.fires_at > now:
            blocked.add(key)  # order: nothing after a not-yet-due event may run
            continue
        out.setdefault(key, []).append(event)
    return out


def complete_events(conn: Connection, finished: Sequence[FinishedEvent], now: datetime) -> None:
    """Close events (completed / rejected / stale) with their outcome in one statement.

    PostgreSQL: ``UPDATE … FROM (VALUES …)``; SQLite: an executemany (no round trips there).
    """
    if not finished:
        return
    if _is_postgres(conn):
        for chunk in _chunks(finished):
            _complete_from_values(conn, chunk, now)
        return
    statement = (
        sa.update(worker_events)
        .where(_W.id == sa.bindparam("b_id"), _W.status == PENDING)
        .values(
            status=sa.bindparam("b_status"),
            outcome=sa.bindparam("b_outcome", type_=worker_events.c.outcome.type),
            attempts=_W.attempts + 1,
            updated_at=now,
            completed_at=now,
        )
    )
    conn.execute(
        statement,
        [{"b_id": f.id, "b_status": f.status, "b_outcome": dict(f.outcome)} for f in finished],
    )


_COMPLETE_FROM_ARRAYS = sa.text(
    """
    UPDATE worker_events AS w
    SET status = d.status, outcome = CAST(d.outcome AS jsonb), attempts = w.attempts + 1,
        updated_at = :now, completed_at = :now
    FROM (
        SELECT unnest(CAST(:ids AS bigint[])) AS id,
               unnest(CAST(:statuses AS text[])) AS status,
               unnest(CAST(:outcomes AS text[])) AS outcome
    ) AS d
    WHERE w.id = d.id AND w.status = 'pending'
    """
)


def _complete_from_values(
    conn: Connection, finished: Sequence[FinishedEvent], now: datetime
) -> None:
    # Three array parameters: one cached statement whatever the batch size.
    conn.execute(
        _COMPLETE_FROM_ARRAYS,
        {
            "ids": [f.id for f in finished],
            "statuses": [f.status for f in finished],
            "outcomes": [json.dumps(dict(f.outcome)) for f in finished],
            "now": now,
        },
    )


def reject_event(conn: Connection, event_id: int, reason: str, now: datetime) -> None:
    """Record a business rejection (not retried)."""
    complete_events(
        conn, [FinishedEvent(id=event_id, status=REJECTED, outcome={"reason": reason})], now
    )


def retry_event(
    conn: Connection,
    event_id: int,
    errors: Sequence[Mapping[str, Any]],
    fires_at: datetime,
    now: datetime,
) -> None:
    """Count a failed attempt, keep its error, and make the event due again at ``fires_at``."""
    conn.execute(
        sa.update(worker_events)
        .where(_W.id == event_id, _W.status == PENDING)
        .values(
            attempts=_W.attempts + 1,
            errors=[dict(e) for e in errors],
            fires_at=fires_at,
            updated_at=now,
        )
    )


def dead_letter(
    conn: Connection, event_id: int, errors: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """Give up on an event after its last attempt; its per-attempt errors are kept."""
    conn.execute(
        sa.update(worker_events)
        .where(_W.id == event_id, _W.status == PENDING)
        .values(
            status=DEAD,
            attempts=_W.attempts + 1,
            errors=[dict(e) for e in errors],
            outcome={"reason": "max_attempts"},
            updated_at=now,
            completed_at=now,
        )
    )


def due_unclaimed_events(
    conn: Connection, now: datetime, *, grace: timedelta, limit: int
) -> list[EntityKey]:
    """Entities the relay should nudge: a due event nobody took.

    An event submitted for now got its own nudge; it counts as stranded only after ``grace``.
    An event that became due later (``fires_at`` in the future at submission, a retry, a timer)
    had no nudge at its due time, so it counts as soon as it is due.
    """
    heads = _due_heads(now).subquery("due")
    head = worker_events.alias("stranded_head")
    query = (
        sa.select(heads.c.machine, heads.c.entity_id)
        .join(head, head.c.id == heads.c.head)
        .where(sa.or_(head.c.fires_at > head.c.created_at, head.c.created_at <= now - grace))
        .order_by(heads.c.head)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in conn.execute(query).all()]


def next_due_at(conn: Connection) -> datetime | None:
    """The earliest ``fires_at`` of any pending event (None when nothing is pending)."""
    value = conn.execute(sa.select(sa.func.min(_W.fires_at)).where(_W.status == PENDING)).scalar()
    return as_utc(value)


# --- outbox ----------------------------------------------------------------------------------


def insert_outbox(
    conn: Connection, actions: Sequence[NewAction], now: datetime, *, lease: timedelta
) -> list[int]:
    """Store actions to run after commit; returns their ids (the dedup tokens) in input order.

    Rows become available to the outbox sweep only after ``lease``: the worker that committed
    them runs them right away, and the sweep picks them up only if that worker died.
    """
    if not actions:
        return []
    ids: list[int] = []
    for chunk in _chunks(actions):
        rows = [
            {
                "event_id": a.event_id,
                "machine": a.machine,
                "entity_id": a.entity_id,
                "entity_version": a.entity_version,
                "action": a.action,
                "phase": a.phase,
                "params": dict(a.params),
                "context": dict(a.context),
                "status": OUTBOX_PENDING,
                "attempts": 0,
                "errors": [],
                "available_at": now + lease,
                "created_at": now,
            }
            for a in chunk
        ]
        returned = conn.execute(sa.insert(action_outbox).returning(_O.id), rows).all()
        ids.extend(sorted(int(r[0]) for r in returned))
    return ids


def load_outbox(conn: Connection, ids: Sequence[int]) -> list[OutboxRow]:
    """Outbox rows by id, in id order."""
    if not ids:
        return []
    query = sa.select(action_outbox).where(_O.id.in_(list(ids))).order_by(_O.id)
    return [_outbox_from_row(r) for r in conn.execute(query).mappings()]


def claim_outbox(
    conn: Connection, now: datetime, limit: int, *, lease: timedelta
) -> list[OutboxRow]:
    """Take stranded or due-for-retry actions (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).

    Claiming pushes ``available_at`` out by ``lease`` so no other sweeper takes them meanwhile.
    """
    query = (
        sa.select(action_outbox)
        .where(_O.status == OUTBOX_PENDING, _O.available_at <= now)
        .order_by(_O.id)
        .limit(limit)
    )
    if _is_postgres(conn):
        query = query.with_for_update(skip_locked=True)
    rows = [_outbox_from_row(r) for r in conn.execute(query).mappings()]
    if rows:
        conn.execute(
            sa.update(action_outbox)
            .where(_O.id.in_([r.id for r in rows]))
            .values(available_at=now + lease)
        )
    return rows


def complete_outbox(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """Mark actions done."""
    if ids:
        conn.execute(
            sa.update(action_outbox)
            .where(_O.id.in_(list(ids)), _O.status == OUTBOX_PENDING)
            .values(status=OUTBOX_DONE, attempts=_O.attempts + 1, completed_at=now)
        )


def fail_outbox(
    conn: Connection,
    action_id: int,
    errors: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    retry_at: datetime | None,
) -> None:
    """Count a failed run: retry at ``retry_at``, or ``dead`` when it is None."""
    values: dict[str, Any] = {
        "attempts": _O.attempts + 1,
        "errors": [dict(e) for e in errors],
    }
    if retry_at is None:
        values.update(status=OUTBOX_DEAD, completed_at=now)
    else:
        values["available_at"] = retry_at
    conn.execute(
        sa.update(action_outbox)
        .where(_O.id == action_id, _O.status == OUTBOX_PENDING)
        .values(**values)
    )


def list_outbox(
    conn: Connection, *, status: str | None = None, event_id: int | None = None, limit: int = 100
) -> list[OutboxRow]:
    """Outbox rows, newest first, filtered by status and/or event."""
    query = sa.select(action_outbox).order_by(_O.id.desc()).limit(limit)
    if status is not None:
        query = query.where(_O.status == status)
    if event_id is not None:
        query = query.where(_O.event_id == event_id)
    return [_outbox_from_row(r) for r in conn.execute(query).mappings()]


# --- operators -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFilter:
    """Which events an operator command applies to (all fields optional, combined with AND)."""

    ids: tuple[int, ...] = ()
    status: str | None = None
    machine: str | None = None
    entity_id: str | None = None
    trigger: str | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        """The SQL conditions of this filter."""
        conditions: list[sa.ColumnElement[bool]] = []
        if self.ids:
            conditions.append(_W.id.in_(list(self.ids)))
        for column, value in (
            (_W.status, self.status),
            (_W.machine, self.machine),
            (_W.entity_id, self.entity_id),
            (_W.trigger, self.trigger),
        ):
            if value is not None:
                conditions.append(column == value)
        return conditions


def get_event(conn: Connection, event_id: int) -> EventRow | None:
    """One event by id."""
    row = conn.execute(sa.select(worker_events).where(_W.id == event_id)).mappings().first()
    return None if row is None else _event_from_row(row)


def list_events(conn: Connection, where: EventFilter, *, limit: int = 50) -> list[EventRow]:
    """Events matching ``where``, newest first."""
    query = sa.select(worker_events).where(*where.where()).order_by(_W.id.desc()).limit(limit)
    return [_event_from_row(r) for r in conn.execute(query).mappings()]


def replay(conn: Connection, where: EventFilter, now: datetime) -> list[EntityKey]:
    """Send finished events matching ``where`` back to ``pending`` with fresh attempts.

    Their past errors are kept. Returns the entities to nudge.
    """
    conditions = [*where.where(), _W.status.in_(REPLAYABLE)]
    keys = conn.execute(sa.select(_W.machine, _W.entity_id).where(*conditions).distinct()).all()
    conn.execute(
        sa.update(worker_events)
        .where(*conditions)
        .values(
            status=PENDING,
            attempts=0,
            fires_at=now,
            outcome=None,
            completed_at=None,
            updated_at=now,
        )
    )
    return [(k[0], k[1]) for k in keys]


def discard(conn: Connection, where: EventFilter, now: datetime) -> int:
    """Mark pending, dead or rejected events matching ``where`` as ``discarded``."""
    result = conn.execute(
        sa.update(worker_events)
        .where(*where.where(), _W.status.in_(DISCARDABLE))
        .values(status=DISCARDED, updated_at=now, completed_at=now)
    )
    return int(result.rowcount)


def stats(conn: Connection) -> dict[str, Any]:
    """Counts for operators and the dashboard: events by status, retries, duplicates, outbox."""
    by_status = {status: 0 for status in EVENT_STATUSES}
    for status, count in conn.execute(
        sa.select(_W.status, sa.func.count()).group_by(_W.status)
    ).all():
        by_status[str(status)] = int(count)
    totals = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(_W.duplicate_count), 0),
            sa.func.count().filter(_W.attempts > 1),
            sa.func.count().filter(sa.and_(_W.status == PENDING, _W.attempts > 0)),
        )
    ).one()
    outbox = {OUTBOX_PENDING: 0, OUTBOX_DONE: 0, OUTBOX_DEAD: 0}
    for status, count in conn.execute(
        sa.select(_O.status, sa.func.count()).group_by(_O.status)
    ).all():
        outbox[str(status)] = int(count)
    return {
        "events": by_status,
        "duplicates": int(totals[0]),
        "retried": int(totals[1]),
        "retrying": int(totals[2]),
        "outbox": outbox,
    }


__all__ = [
    "COMPLETED",
    "DEAD",
    "EVENT_STATUSES",
    "PENDING",
    "REJECTED",
    "STALE",
    "EntityKey",
    "EventFilter",
    "EventRow",
    "FinishedEvent",
    "NewAction",
    "NewEvent",
    "OutboxRow",
    "claim_entities",
    "claim_outbox",
    "complete_events",
    "complete_outbox",
    "dead_letter",
    "discard",
    "due_unclaimed_events",
    "fail_outbox",
    "get_event",
    "has_due_events",
    "insert_events",
    "insert_one",
    "insert_outbox",
    "insert_timer_events",
    "is_single_statement",
    "list_events",
    "list_outbox",
    "load_outbox",
    "lock_entity",
    "next_due_at",
    "pending_events_for",
    "pending_events_for_many",
    "reject_event",
    "replay",
    "retry_event",
    "stats",
]
