"""Every query on ``entity_states``, as connection-level functions.

The SQL stores and the worker fleet call these inside their own transactions; nothing else
composes SQL for entities. Writes are versioned: an update only matches ``version = :expected``
and a create only succeeds when no row exists, otherwise :class:`StaleVersionError` is raised and
nothing is overwritten. Callers wrap their transaction in
:func:`pystator.stores.sql.engine.translate_errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from pystator.fsm_core.clock import as_utc_or_none, utc_now
from pystator.fsm_core.errors import StaleVersionError
from pystator.fsm_core.records import NO_VERSION, EntityKey, EntityRecord
from pystator.stores.sql.schema import entity_states

_E = entity_states.c


def _key(machine: str, entity_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(_E.machine == machine, _E.entity_id == entity_id)


def record_from_row(row: RowMapping) -> EntityRecord:
    """Build an :class:`EntityRecord` from an ``entity_states`` row mapping."""
    return EntityRecord(
        machine=row["machine"],
        entity_id=row["entity_id"],
        state=row["state"],
        context=dict(row["context"] or {}),
        version=int(row["version"]),
        entries={str(k): int(v) for k, v in (row["entries"] or {}).items()},
        created_at=as_utc_or_none(row["created_at"]),
        updated_at=as_utc_or_none(row["updated_at"]),
        machine_version=row.get("machine_version"),
    )


def _record_values(record: EntityRecord) -> dict[str, Any]:
    now = utc_now()
    return {
        "machine": record.machine,
        "entity_id": record.entity_id,
        "state": record.state,
        "context": dict(record.context),
        "entries": dict(record.entries),
        "version": record.version,
        "created_at": record.created_at or now,
        "updated_at": record.updated_at or now,
        "machine_version": record.machine_version,
    }


def load_record(
    conn: Connection, machine: str, entity_id: str, *, for_update: bool = False
) -> EntityRecord | None:
    """The stored record of one entity, or None. ``for_update`` locks the row (PostgreSQL)."""
    query = sa.select(entity_states).where(_key(machine, entity_id))
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return None if row is None else record_from_row(row)


_LOAD_RECORDS = sa.select(entity_states).where(
    sa.tuple_(_E.machine, _E.entity_id).in_(sa.bindparam("keys", expanding=True))
)


def load_records(conn: Connection, keys: Sequence[EntityKey]) -> dict[EntityKey, EntityRecord]:
    """Stored records of many ``(machine, entity_id)`` keys in one query (missing keys absent)."""
    if not keys:
        return {}
    rows = conn.execute(_LOAD_RECORDS, {"keys": list(keys)}).mappings()
    records = (record_from_row(row) for row in rows)
    return {(r.machine, r.entity_id): r for r in records}


def load_version(conn: Connection, machine: str, entity_id: str) -> int:
    """The stored version of one entity (``NO_VERSION`` when it does not exist)."""
    query = sa.select(_E.version).where(_key(machine, entity_id))
    version = conn.execute(query).scalar_one_or_none()
    return NO_VERSION if version is None else int(version)


# Built once (the worker writes an entity per event); the row's values are the parameters.
# RETURNING, not rowcount: INSERT rowcount is not reported by every driver (psycopg 3).
_INSERT_IF_ABSENT: dict[str, sa.Executable] = {
    "postgresql": postgresql.insert(entity_states).on_conflict_do_nothing().returning(_E.version),
    "sqlite": sqlite.insert(entity_states).on_conflict_do_nothing().returning(_E.version),
}
_UPDATE_VERSIONED = (
    sa.update(entity_states)
    .where(
        _E.machine == sa.bindparam("b_machine"),
        _E.entity_id == sa.bindparam("b_entity_id"),
        _E.version == sa.bindparam("b_expected"),
    )
    .values(
        state=sa.bindparam("state"),
        context=sa.bindparam("context", type_=_E.context.type),
        entries=sa.bindparam("entries", type_=_E.entries.type),
        version=sa.bindparam("version"),
        updated_at=sa.bindparam("updated_at", type_=_E.updated_at.type),
        machine_version=sa.bindparam("machine_version"),
    )
)


def insert_record(conn: Connection, record: EntityRecord) -> None:
    """Create the entity's row; :class:`StaleVersionError` if it already exists.

    PostgreSQL and SQLite use ``ON CONFLICT DO NOTHING RETURNING`` so a lost race never aborts
    the caller's transaction; other dialects fall back to catching the unique violation (in a savepoint).
    """
    values = _record_values(record)
    statement = _INSERT_IF_ABSENT.get(conn.dialect.name)
    if statement is not None:
        inserted = conn.execute(statement, values).first() is not None
    else:
        inserted = _insert_in_savepoint(conn, values)
    if not inserted:
        _raise_stale(conn, record, expected_version=NO_VERSION)


def _insert_in_savepoint(conn: Connection, values: dict[str, Any]) -> bool:
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(entity_states).values(values))
    except sa.exc.IntegrityError:
        return False
    return True


def update_record(conn: Connection, record: EntityRecord, *, expected_version: int) -> None:
    """Overwrite the entity's row only if its version is still ``expected_version``."""
    values = _record_values(record)
    del values["created_at"]
    values.update(
        b_machine=values.pop("machine"),
        b_entity_id=values.pop("entity_id"),
        b_expected=expected_version,
    )
    if conn.execute(_UPDATE_VERSIONED, values).rowcount != 1:
        _raise_stale(conn, record, expected_version=expected_version)


def save_record(conn: Connection, record: EntityRecord, *, expected_version: int) -> None:
    """Insert when ``expected_version`` is ``NO_VERSION`` (0), else a versioned update."""
    if expected_version == NO_VERSION:
        insert_record(conn, record)
    else:
        update_record(conn, record, expected_version=expected_version)


def _raise_stale(conn: Connection, record: EntityRecord, *, expected_version: int) -> None:
    actual = load_version(conn, record.machine, record.entity_id)
    raise StaleVersionError(
        f"entity {record.entity_id!r} of machine {record.machine!r}: expected version "
        f"{expected_version}, found {actual}",
        entity_id=record.entity_id,
        expected_version=expected_version,
        actual_version=actual,
    )


def search(conn: Connection, *, machine: str | None, prefix: str, limit: int) -> list[EntityRecord]:
    """Entities whose id starts with ``prefix`` (of one machine, or any), by id."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = (
        sa.select(entity_states)
        .where(_E.entity_id.like(pattern, escape="\\"))
        .order_by(_E.machine, _E.entity_id)
        .limit(limit)
    )
    if machine is not None:
        query = query.where(_E.machine == machine)
    return [record_from_row(r) for r in conn.execute(query).mappings()]


def state_counts(conn: Connection, machine: str) -> dict[str, int]:
    """How many entities of ``machine`` are in each state."""
    query = sa.select(_E.state, sa.func.count()).where(_E.machine == machine).group_by(_E.state)
    return {str(state): int(n) for state, n in conn.execute(query).all()}


__all__ = [
    "insert_record",
    "load_record",
    "load_records",
    "load_version",
    "record_from_row",
    "save_record",
    "search",
    "state_counts",
    "update_record",
]
