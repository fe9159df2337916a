"""Per-entity locks, for both dialects: one entity is worked on by one transaction at a time.

PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of ``machine/entity_id``, taken
with ``pg_try_advisory_xact_lock`` (never waits; released by commit or rollback). SQLite: the
fleet's transactions start with ``BEGIN IMMEDIATE`` (:mod:`pystator.stores.sql.connections`), so
the transaction itself holds the database's only write lock and every entity is already locked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc
from pystator.fsm_core.records import EntityKey
from pystator.stores.sql.db_clock import FLEET_NOW


def is_postgres(conn: Connection) -> bool:
    """True on PostgreSQL (advisory locks, ``SKIP LOCKED``, array parameters)."""
    return conn.dialect.name == "postgresql"


def _lock_key(machine: Any, entity_id: Any) -> sa.ColumnElement[Any]:
    return sa.func.hashtextextended(sa.cast(machine, sa.Text) + "/" + entity_id, 0)


def try_lock_expression(machine: Any, entity_id: Any) -> sa.ColumnElement[Any]:
    """SQL that takes the entity's advisory lock for the transaction; true when it got it."""
    return sa.func.pg_try_advisory_xact_lock(_lock_key(machine, entity_id))


_LOCK_ONE = sa.select(
    try_lock_expression(
        sa.bindparam("machine", type_=sa.Text), sa.bindparam("entity_id", type_=sa.Text)
    )
)


def _lock_many() -> sa.Select[Any]:
    """Several entities in one round trip: the keys as two arrays, locked in the order given
    (the same key expression as one at a time)."""
    texts = postgresql.ARRAY(sa.Text)
    keys = (
        sa.func.unnest(
            sa.bindparam("machines", type_=texts), sa.bindparam("entity_ids", type_=texts)
        )
        .table_valued("machine", "entity_id", with_ordinality="n")
        .render_derived(name="k")
    )
    return (
        sa.select(keys.c.machine, keys.c.entity_id)
        .where(try_lock_expression(keys.c.machine, keys.c.entity_id))
        .order_by(keys.c.n)
    )


_LOCK_MANY = _lock_many()
_LOCK_ONE_AT = _LOCK_ONE.add_columns(FLEET_NOW)
_LOCK_MANY_AT = _LOCK_MANY.add_columns(FLEET_NOW)


def lock_entity(conn: Connection, machine: str, entity_id: str) -> bool:
    """Take this entity's lock for the transaction; False when another worker holds it."""
    if not is_postgres(conn):
        return True  # BEGIN IMMEDIATE: this transaction already excludes every other writer
    return bool(conn.execute(_LOCK_ONE, {"machine": machine, "entity_id": entity_id}).scalar())


def lock_entities(conn: Connection, keys: Sequence[EntityKey]) -> list[EntityKey]:
    """Take the locks of several entities for the transaction, in one statement; returns the
    keys it got, in the order given (those another worker holds are left out)."""
    keys = list(dict.fromkeys(keys))
    if not is_postgres(conn):
        return keys
    if len(keys) == 1:
        return keys if lock_entity(conn, *keys[0]) else []
    params = {"machines": [k[0] for k in keys], "entity_ids": [k[1] for k in keys]}
    return [(r[0], r[1]) for r in conn.execute(_LOCK_MANY, params).all()]


def lock_entities_at(
    conn: Connection, keys: Sequence[EntityKey], now: datetime | None
) -> tuple[list[EntityKey], datetime | None]:
    """:func:`lock_entities`, and the fleet's time (:mod:`pystator.stores.sql.db_clock`) read
    by the same statement: None when no lock was taken."""
    keys = list(dict.fromkeys(keys))
    if not is_postgres(conn):
        return keys, now
    if len(keys) == 1:
        got, at = conn.execute(
            _LOCK_ONE_AT, {"machine": keys[0][0], "entity_id": keys[0][1], "now": now}
        ).one()
        return (keys, as_utc(at)) if got else ([], None)
    params = {"machines": [k[0] for k in keys], "entity_ids": [k[1] for k in keys], "now": now}
    rows = conn.execute(_LOCK_MANY_AT, params).all()
    return [(r[0], r[1]) for r in rows], as_utc(rows[0][2]) if rows else None


def wait_for_entity(conn: Connection, machine: str, entity_id: str) -> None:
    """Take this entity's lock for the transaction, waiting while a worker holds it (operator
    commands, which must not change an event a worker is applying at this moment)."""
    if not is_postgres(conn):
        return  # BEGIN IMMEDIATE already waited for every other writer
    key = _lock_key(sa.literal(machine, sa.Text), sa.literal(entity_id, sa.Text))
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def _worker_key(worker_id: str) -> sa.ColumnElement[Any]:
    return sa.func.hashtextextended(sa.literal("pystator-worker/" + worker_id, sa.Text), 0)


def hold_worker_lock(conn: Connection, worker_id: str) -> None:
    """Take a worker process's session-level lock on ``conn``: held for as long as that
    connection lives, which is as long as the process (PostgreSQL releases it the moment the
    process dies, SIGKILL included). Nothing to do on SQLite."""
    if is_postgres(conn):
        conn.execute(sa.select(sa.func.pg_advisory_lock(_worker_key(worker_id))))


def worker_alive(conn: Connection, worker_id: str) -> bool:
    """True while the worker process holding :func:`hold_worker_lock` lives (call inside a
    transaction: a probe that gets the lock holds it only until that transaction ends)."""
    if not is_postgres(conn):
        return True
    probe = sa.select(sa.func.pg_try_advisory_xact_lock(_worker_key(worker_id)))
    return not bool(conn.execute(probe).scalar())


def _named_key(name: str) -> sa.ColumnElement[Any]:
    return sa.func.hashtextextended(sa.literal("pystator-duty/" + name, sa.Text), 0)


def try_duty_lock(conn: Connection, name: str) -> bool:
    """Take the session-level lock of the fleet-wide duty ``name`` (the pruner) on ``conn``
    without waiting; False when another process holds it. Held until
    :func:`release_duty_lock` or until the connection closes (a dead process frees it).
    Always True on SQLite, whose writers are serialised anyway."""
    if not is_postgres(conn):
        return True
    return bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(_named_key(name)))).scalar())


def release_duty_lock(conn: Connection, name: str) -> None:
    """Give up the lock :func:`try_duty_lock` took on ``conn``."""
    if is_postgres(conn):
        conn.execute(sa.select(sa.func.pg_advisory_unlock(_named_key(name))))


__all__ = [
    "hold_worker_lock",
    "is_postgres",
    "lock_entities",
    "lock_entities_at",
    "lock_entity",
    "release_duty_lock",
    "try_duty_lock",
    "try_lock_expression",
    "wait_for_entity",
    "worker_alive",
]
