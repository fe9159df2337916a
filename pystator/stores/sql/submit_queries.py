"""Inserting events into ``worker_events``: single, batched, in a caller's transaction, timers.

A repeated ``(machine, idempotency_key)`` never inserts a second row. When the submission is
the same event (same fingerprint: entity, trigger, context) it bumps the first event's
``duplicate_count`` and is returned as a duplicate of it; when it is a different event it
changes nothing and is returned as a conflict (the caller refuses it). Each result says which.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import utc_now
from pystator.fsm_core.records import ArmedTimer, EventOrigin, EventStatus
from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.rows import INSERT_CHUNK_ROWS, Inserted, NewEvent, chunks
from pystator.stores.sql.schema import idempotency_conflicts, worker_events

_W = worker_events.c


def _event_values(event: NewEvent, now: datetime) -> dict[str, Any]:
    """The row SQLite inserts (its clock is this host's: ``now`` is always given there)."""
    return {
        "machine": event.machine,
        "entity_id": event.entity_id,
        "trigger": event.trigger,
        "context": dict(event.context),
        "status": EventStatus.PENDING,
        "origin": event.origin,
        "idempotency_key": event.idempotency_key,
        "duplicate_count": 0,
        "attempts": 0,
        "max_attempts": event.max_attempts,
        "fires_at": now if event.fires_at is None else event.fires_at,
        "timer_key": event.timer_key,
        "timer_state": event.timer_state,
        "timer_entry": event.timer_entry,
        "errors": [],
        "outcome": None,
        "fingerprint": event.fingerprint,
        "created_at": now,
        "updated_at": now,
        "traceparent": event.traceparent,
        "kind": event.kind,
    }


def _upsert(conn: Connection) -> sa.Executable:
    insert = postgresql.insert if is_postgres(conn) else sqlite.insert
    statement = insert(worker_events)
    same = sa.or_(_W.fingerprint.is_(None), _W.fingerprint == statement.excluded.fingerprint)
    return statement.on_conflict_do_update(
        index_elements=[_W.machine, _W.idempotency_key],
        set_={
            "duplicate_count": _W.duplicate_count + sa.case((same, 1), else_=0),
            "last_duplicate_at": sa.case(
                (same, statement.excluded.updated_at), else_=_W.last_duplicate_at
            ),
        },
    ).returning(
        _W.id,
        _W.duplicate_count,
        _W.fingerprint,
        _W.idempotency_key,
        _W.machine,
        (_W.fires_at <= _W.created_at).label("due"),
    )


# PostgreSQL: one statement with one array parameter per column, whatever the batch size (a
# multi-row VALUES statement costs far more to build and parse). WITH ORDINALITY keeps ids in
# submission order. ``now`` NULL stamps the rows with the server's clock (fleet_now in
# db_clock); an event with no fires_at is due at that moment. ``due``: due when inserted.
_UPSERT_FROM_ARRAYS = sa.text(
    """
    INSERT INTO worker_events (machine, entity_id, trigger, context, status, origin,
        idempotency_key, duplicate_count, attempts, max_attempts, fires_at, timer_key,
        timer_state, timer_entry, errors, fingerprint, created_at, updated_at, traceparent, kind)
    SELECT d.machine, d.entity_id, d.trigger, CAST(d.context AS jsonb), 'pending', d.origin,
        d.idempotency_key, 0, 0, d.max_attempts, COALESCE(d.fires_at, n.now), d.timer_key,
        d.timer_state, d.timer_entry, CAST('[]' AS jsonb), d.fingerprint, n.now, n.now,
        d.traceparent, d.kind
    FROM (SELECT COALESCE(CAST(:now AS timestamptz), statement_timestamp()) AS now) AS n,
         unnest(CAST(:machines AS text[]), CAST(:entity_ids AS text[]),
                CAST(:triggers AS text[]), CAST(:contexts AS text[]), CAST(:origins AS text[]),
                CAST(:keys AS text[]), CAST(:max_attempts AS integer[]),
                CAST(:fires_at AS timestamptz[]), CAST(:timer_keys AS text[]),
                CAST(:timer_states AS text[]), CAST(:timer_entries AS bigint[]),
                CAST(:fingerprints AS text[]), CAST(:traceparents AS text[]),
                CAST(:kinds AS text[]))
         WITH ORDINALITY AS d(machine, entity_id, trigger, context, origin, idempotency_key,
                              max_attempts, fires_at, timer_key, timer_state, timer_entry,
                              fingerprint, traceparent, kind, ord)
    ORDER BY d.ord
    ON CONFLICT (machine, idempotency_key)
    DO UPDATE SET duplicate_count = worker_events.duplicate_count + CASE
        WHEN worker_events.fingerprint IS NULL
          OR worker_events.fingerprint = EXCLUDED.fingerprint THEN 1 ELSE 0 END,
      last_duplicate_at = CASE
        WHEN worker_events.fingerprint IS NULL
          OR worker_events.fingerprint = EXCLUDED.fingerprint THEN EXCLUDED.updated_at
        ELSE worker_events.last_duplicate_at END
    RETURNING id, duplicate_count, fingerprint, idempotency_key, machine, fires_at <= created_at
    """
)


# One event (the common producer call): plain scalar parameters, a statement the server plans
# far more cheaply than the unnest form. Written in psycopg's placeholder style for the raw-cursor
# path (:func:`insert_one`); SQLAlchemy connections run the same text with ``:name`` binds.
_UPSERT_ONE_SQL = """
    INSERT INTO worker_events (machine, entity_id, trigger, context, status, origin,
        idempotency_key, duplicate_count, attempts, max_attempts, fires_at, timer_key,
        timer_state, timer_entry, errors, fingerprint, created_at, updated_at, traceparent, kind)
    SELECT %(machine)s, %(entity_id)s, %(trigger)s, CAST(%(context)s AS jsonb), 'pending',
        %(origin)s, %(idempotency_key)s, 0, 0, %(max_attempts)s,
        COALESCE(CAST(%(fires_at)s AS timestamptz), n.now), %(timer_key)s,
        %(timer_state)s, %(timer_entry)s, CAST('[]' AS jsonb), %(fingerprint)s, n.now, n.now,
        %(traceparent)s, %(kind)s
    FROM (SELECT COALESCE(CAST(%(now)s AS timestamptz), statement_timestamp()) AS now) AS n
    ON CONFLICT (machine, idempotency_key)
    DO UPDATE SET duplicate_count = worker_events.duplicate_count + CASE
        WHEN worker_events.fingerprint IS NULL
          OR worker_events.fingerprint = EXCLUDED.fingerprint THEN 1 ELSE 0 END,
      last_duplicate_at = CASE
        WHEN worker_events.fingerprint IS NULL
          OR worker_events.fingerprint = EXCLUDED.fingerprint THEN EXCLUDED.updated_at
        ELSE worker_events.last_duplicate_at END
    RETURNING id, duplicate_count, fingerprint, fires_at <= created_at
"""
_UPSERT_ONE = sa.text(re.sub(r"%\((\w+)\)s", r":\1", _UPSERT_ONE_SQL))


def _context_json(event: NewEvent) -> str:
    return (
        event.encoded_context
        if event.encoded_context is not None
        else json.dumps(dict(event.context))
    )


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
    ("fingerprint", "fingerprints", operator.attrgetter("fingerprint")),
    ("traceparent", "traceparents", operator.attrgetter("traceparent")),
    ("kind", "kinds", operator.attrgetter("kind")),
)


def _one_params(event: NewEvent, now: datetime | None) -> dict[str, Any]:
    params: dict[str, Any] = {scalar: value(event) for scalar, _, value in _EVENT_PARAMS}
    params["now"] = now
    return params


def _array_params(events: Sequence[NewEvent], now: datetime | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        array: [value(e) for e in events] for _, array, value in _EVENT_PARAMS
    }
    params["now"] = now
    return params


def insert_events(
    conn: Connection, events: Sequence[NewEvent], now: datetime | None
) -> list[Inserted]:
    """Insert events in one statement per chunk; one :class:`Inserted` per event, in input order
    (a repeated key is a duplicate or a conflict of the event that holds it). ``now`` stamps
    the rows; None on PostgreSQL: the server's clock (:mod:`pystator.stores.sql.db_clock`)."""
    results: list[Inserted] = []
    for chunk in chunks(events):
        results.extend(_insert_chunk(conn, chunk, now))
    return results


def is_single_statement(events: Sequence[NewEvent]) -> bool:
    """True when :func:`insert_events` writes ``events`` with exactly one statement."""
    if len(events) > INSERT_CHUNK_ROWS:
        return False
    keys = [(e.machine, e.idempotency_key) for e in events if e.idempotency_key is not None]
    return len(keys) == len(set(keys))


def insert_one(driver_conn: Any, event: NewEvent, now: datetime | None) -> Inserted:
    """Insert one event through a raw psycopg connection in autocommit mode (PostgreSQL).

    Same statement and result as :func:`insert_events` for a single event, minus SQLAlchemy's
    per-execute overhead (the producer's hot path). psycopg prepares the statement server-side
    after a few runs on a connection.
    """
    row = driver_conn.execute(_UPSERT_ONE_SQL, _one_params(event, now)).fetchone()
    return _result(event, row[0], row[1], row[2], row[3])


def _result(
    event: NewEvent, event_id: Any, duplicate_count: Any, stored: Any, due: Any
) -> Inserted:
    """Read one RETURNING row: a different stored fingerprint means the key was reused."""
    conflict = stored is not None and event.fingerprint is not None and stored != event.fingerprint
    return Inserted(
        id=int(event_id),
        duplicate=not conflict and int(duplicate_count) > 0,
        conflict=conflict,
        due=bool(due),
    )


def _insert_chunk(
    conn: Connection, events: Sequence[NewEvent], now: datetime | None
) -> list[Inserted]:
    # Repeats of one key inside a batch would make the upsert touch a row twice (an error on
    # PostgreSQL): send each key once, then settle the repeats against it.
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
    if is_postgres(conn) and len(unique) == 1:
        one = conn.execute(_UPSERT_ONE, _one_params(unique[0], now)).one()
        event_id, dup_count, stored, due = one
        first = unique[0]
        returned = [(event_id, dup_count, stored, first.idempotency_key, first.machine, due)]
    elif is_postgres(conn):
        returned = conn.execute(_UPSERT_FROM_ARRAYS, _array_params(unique, now)).all()
    else:
        stamp = now or utc_now()  # SQLite: the host's clock is the database's
        returned = conn.execute(_upsert(conn), [_event_values(e, stamp) for e in unique]).all()
    by_position = _match_returned(unique, returned)
    out: list[Inserted] = []
    position = 0
    for index, event in enumerate(events):
        if index in repeat_of:
            first = unique[repeat_of[index]]
            conflict = event.fingerprint != first.fingerprint
            holder = by_position[repeat_of[index]].id
            out.append(Inserted(id=holder, duplicate=not conflict, conflict=conflict))
        else:
            out.append(by_position[position])
            position += 1
    repeats = [out[i].id for i in repeat_of if out[i].duplicate]
    if repeats:
        _count_repeats(conn, repeats)
    return out


def _match_returned(unique: Sequence[NewEvent], returned: Sequence[Any]) -> list[Inserted]:
    """Map RETURNING rows to input positions: keyed rows by key, the others by ascending id."""
    if len(returned) != len(unique):  # pragma: no cover - a driver contract violation
        raise RuntimeError("worker_events insert returned an unexpected number of rows")
    keyed = {(row[4], row[3]): row for row in returned if row[3] is not None}
    plain = iter(sorted((int(row[0]), bool(row[5])) for row in returned if row[3] is None))
    matched: list[Inserted] = []
    for event in unique:
        if event.idempotency_key is None:
            event_id, due = next(plain)
            matched.append(Inserted(id=event_id, duplicate=False, conflict=False, due=due))
        else:
            row = keyed[(event.machine, event.idempotency_key)]
            matched.append(_result(event, row[0], row[1], row[2], row[5]))
    return matched


def _count_repeats(conn: Connection, ids: Sequence[int]) -> None:
    for event_id in ids:
        conn.execute(
            sa.update(worker_events)
            .where(_W.id == event_id)
            .values(duplicate_count=_W.duplicate_count + 1)
        )


def record_conflicts(
    conn: Connection, refused: Sequence[tuple[NewEvent, int]], now: datetime
) -> None:
    """Remember refused submissions whose key belongs to another event (``idempotency_conflicts``)."""
    rows = [
        {
            "machine": event.machine,
            "idempotency_key": event.idempotency_key,
            "event_id": holder,
            "entity_id": event.entity_id,
            "trigger": event.trigger,
            "fingerprint": event.fingerprint or "",
            "created_at": now,
        }
        for event, holder in refused
    ]
    if rows:
        conn.execute(sa.insert(idempotency_conflicts), rows)


def insert_timer_events(
    conn: Connection, armed: Sequence[ArmedTimer], now: datetime, *, max_attempts: int = 5
) -> list[Inserted]:
    """Store fired timers as events (origin ``timer``, carrying their state entry).

    They have no idempotency key (users' keys cannot reach them): a timer fires once because
    firing deletes its ``worker_timers`` row in the same transaction.
    """
    events = [
        NewEvent(
            machine=t.machine,
            entity_id=t.entity_id,
            trigger=t.trigger,
            fires_at=t.due_at or now,
            origin=EventOrigin.TIMER,
            max_attempts=max_attempts,
            timer_key=t.key,
            timer_state=t.state,
            timer_entry=t.entry,
            traceparent=t.trace,  # a firing joins the trace of the apply that armed it
        )
        for t in armed
    ]
    return insert_events(conn, events, now) if events else []


__all__ = [
    "insert_events",
    "insert_one",
    "insert_timer_events",
    "is_single_statement",
    "record_conflicts",
]
