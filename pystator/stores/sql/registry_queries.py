"""Every query on the machine registry (``machine_registry``, ``machine_versions``).

A machine is a name with numbered, immutable versions; the registry row points at the current one
or says the machine is retired. Publishing a version locks the name's registry row first, so two
publishers of one name take turns and their versions are numbered one after the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc, as_utc_or_none
from pystator.fsm_core.records import EventStatus
from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.rows import OutboxStatus
from pystator.stores.sql.schema import (
    action_outbox,
    machine_registry,
    machine_versions,
    worker_events,
    worker_timers,
)

_R = machine_registry.c
_V = machine_versions.c


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineRecord:
    """One ``machine_registry`` row: a stored machine and its current version."""

    name: str
    current_version: int
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None

    @property
    def retired(self) -> bool:
        """True once the machine was retired (producers refuse it; its versions stay)."""
        return self.retired_at is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineVersion:
    """One ``machine_versions`` row."""

    name: str
    version: int
    definition: Mapping[str, Any]
    checksum: str
    created_by: str
    created_at: datetime
    upgrade_policy: str = "auto"


def _record(row: Any) -> MachineRecord:
    return MachineRecord(
        name=row["name"],
        current_version=int(row["current_version"]),
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
        retired_at=as_utc_or_none(row["retired_at"]),
    )


def _version(row: Any) -> MachineVersion:
    return MachineVersion(
        name=row["name"],
        version=int(row["version"]),
        definition=row["definition"],
        checksum=row["checksum"],
        created_by=row["created_by"],
        created_at=as_utc(row["created_at"]),
        upgrade_policy=str(row["upgrade_policy"]),
    )


def heads(conn: Connection) -> dict[str, int | None]:
    """Every stored machine's current version (None for a retired one): one small query, what
    a process polls to notice new versions. A name with versions but no current one (only
    registered candidates) is left out: a definition from a file of that name stays in force."""
    rows = conn.execute(
        sa.select(_R.name, _R.current_version, _R.retired_at).where(_R.current_version > 0)
    ).all()
    return {name: (None if retired else int(version)) for name, version, retired in rows}


def pinned_machines(conn: Connection) -> list[str]:
    """Names of the active machines whose current version is ``pinned`` (their entities keep
    the version they are on)."""
    joined = machine_registry.join(
        machine_versions, sa.and_(_V.name == _R.name, _V.version == _R.current_version)
    )
    query = (
        sa.select(_R.name)
        .select_from(joined)
        .where(_R.retired_at.is_(None), _V.upgrade_policy == "pinned")
    )
    return [str(n) for n in conn.execute(query).scalars()]


def get_machine(conn: Connection, name: str) -> MachineRecord | None:
    """The registry row of ``name``."""
    row = conn.execute(sa.select(machine_registry).where(_R.name == name)).mappings().first()
    return None if row is None else _record(row)


def list_machines(conn: Connection, *, include_retired: bool = False) -> list[MachineRecord]:
    """Stored machines by name."""
    query = sa.select(machine_registry).order_by(_R.name)
    if not include_retired:
        query = query.where(_R.retired_at.is_(None))
    return [_record(r) for r in conn.execute(query).mappings()]


def get_version(conn: Connection, name: str, version: int) -> MachineVersion | None:
    """One version of ``name``."""
    query = sa.select(machine_versions).where(_V.name == name, _V.version == version)
    row = conn.execute(query).mappings().first()
    return None if row is None else _version(row)


def list_versions(conn: Connection, name: str) -> list[MachineVersion]:
    """Every version of ``name``, newest first."""
    query = sa.select(machine_versions).where(_V.name == name).order_by(_V.version.desc())
    return [_version(r) for r in conn.execute(query).mappings()]


def version_numbers(conn: Connection, name: str) -> list[int]:
    """The version numbers of ``name``, oldest first (no definitions read)."""
    query = sa.select(_V.version).where(_V.name == name).order_by(_V.version)
    return [int(v) for v in conn.execute(query).scalars()]


def lock_machine(conn: Connection, name: str, now: datetime) -> MachineRecord | None:
    """Lock the registry row of ``name`` for this transaction (creating a placeholder row at
    version 0 for a new name, so there is a row to lock); returns the row as it was, or None for
    a new name."""
    insert = (postgresql if is_postgres(conn) else sqlite).insert(machine_registry)
    created = conn.execute(
        insert.values(name=name, current_version=0, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=[_R.name])
        .returning(_R.name)
    ).first()
    query = sa.select(machine_registry).where(_R.name == name)
    if is_postgres(conn):
        query = query.with_for_update()
    row = conn.execute(query).mappings().one()
    return None if created is not None else _record(row)


def add_version(
    conn: Connection,
    name: str,
    *,
    definition: Mapping[str, Any],
    checksum: str,
    created_by: str,
    now: datetime,
    upgrade_policy: str = "auto",
) -> int:
    """Store the next version of ``name`` and make it current (un-retiring the machine); the
    caller holds the row lock (:func:`lock_machine`). Returns the new version number."""
    version = _insert_version(
        conn, name, definition, checksum, created_by, now, upgrade_policy=upgrade_policy
    )
    set_current(conn, name, version, now)
    return version


def set_current(conn: Connection, name: str, version: int, now: datetime) -> None:
    """Make ``version`` the current version of ``name`` (and the machine active)."""
    conn.execute(
        sa.update(machine_registry)
        .where(_R.name == name)
        .values(current_version=version, retired_at=None, updated_at=now)
    )


def retire(conn: Connection, name: str, now: datetime) -> bool:
    """Retire ``name`` (its versions stay); False when there is no active machine of that name."""
    result = conn.execute(
        sa.update(machine_registry)
        .where(_R.name == name, _R.retired_at.is_(None), _R.current_version > 0)
        .values(retired_at=now, updated_at=now)
    )
    return bool(result.rowcount)


def pending_work(conn: Connection, name: str) -> dict[str, int]:
    """What of ``name`` is still to be done: pending events, armed timers, pending actions (a
    machine is not retired while any remains)."""
    counts = {
        "pending_events": sa.select(sa.func.count()).where(
            worker_events.c.machine == name, worker_events.c.status == EventStatus.PENDING
        ),
        "armed_timers": sa.select(sa.func.count()).where(
            worker_timers.c.machine == name, worker_timers.c.dead_at.is_(None)
        ),
        "pending_actions": sa.select(sa.func.count()).where(
            action_outbox.c.machine == name, action_outbox.c.status == OutboxStatus.PENDING
        ),
    }
    return {key: int(conn.execute(query).scalar_one()) for key, query in counts.items()}


def add_inactive_version(
    conn: Connection,
    name: str,
    *,
    definition: Mapping[str, Any],
    checksum: str,
    created_by: str,
    now: datetime,
) -> tuple[int, bool]:
    """Store ``definition`` as the next version of ``name`` without making it current (a
    candidate kept beside the machine); a version with the same ``checksum`` is reused. The
    caller holds the row lock (:func:`lock_machine`). Returns ``(version, created)``."""
    same = conn.execute(
        sa.select(sa.func.min(_V.version)).where(_V.name == name, _V.checksum == checksum)
    ).scalar()
    if same is not None:
        return int(same), False
    return _insert_version(conn, name, definition, checksum, created_by, now), True


def _insert_version(
    conn: Connection,
    name: str,
    definition: Mapping[str, Any],
    checksum: str,
    created_by: str,
    now: datetime,
    *,
    upgrade_policy: str = "auto",
) -> int:
    """Insert the next version number of ``name`` (the caller holds the row lock)."""
    latest = conn.execute(sa.select(sa.func.max(_V.version)).where(_V.name == name)).scalar()
    version = int(latest or 0) + 1
    conn.execute(
        sa.insert(machine_versions).values(
            name=name,
            version=version,
            definition=dict(definition),
            checksum=checksum,
            created_by=created_by,
            created_at=now,
            upgrade_policy=upgrade_policy,
        )
    )
    return version


__all__ = [
    "MachineRecord",
    "MachineVersion",
    "add_inactive_version",
    "add_version",
    "get_machine",
    "get_version",
    "heads",
    "list_machines",
    "list_versions",
    "lock_machine",
    "pending_work",
    "pinned_machines",
    "retire",
    "set_current",
    "version_numbers",
]
