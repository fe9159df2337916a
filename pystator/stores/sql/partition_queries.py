"""Every query of opt-in PostgreSQL partitioning of ``transition_history`` by day.

:func:`partition_history` converts the table once (``pystator db partition-history``) and is
idempotent: on a table already partitioned it only creates the missing daily partitions. The
pruner then calls :func:`create_days` every pass and drops whole old days with
:func:`drop_partition` instead of deleting their rows (:mod:`pystator.fleet.retention`).

The converted table is partitioned by ``RANGE (created_at)`` and holds:

- ``transition_history_legacy``: the table as it was, attached as one partition covering
  ``[oldest row (or the epoch), start of today)`` (or up to the day after its newest row, when it
  already holds rows of today or later);
- ``transition_history_pYYYYMMDD``: one partition per UTC day;
- ``transition_history_default``: a DEFAULT partition, so a row whose day has no partition yet
  (a pruner that did not run for a week) is still written and never fails a worker's transaction.

PostgreSQL only allows unique keys that contain the partition column: the primary key becomes
``(id, created_at)`` and the unique key ``(machine, entity_id, version, created_at)``. That
``(machine, entity_id, version)`` stays unique is then guaranteed by the entity's version
compare-and-swap, which runs in the same transaction as the history insert (only the writer that
moved the entity from ``version - 1`` to ``version`` writes that version's row), not by the index.
Ids keep increasing: the new table takes over the old table's sequence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.errors import StoreError
from pystator.stores.sql.locking import is_postgres
from pystator.stores.sql.schema import transition_history

TABLE = transition_history.name
LEGACY = f"{TABLE}_legacy"
DEFAULT = f"{TABLE}_default"
#: Daily partitions are named ``transition_history_p<YYYYMMDD>`` (the UTC day they hold).
DAY_PREFIX = f"{TABLE}_p"
_DAY_NAME = re.compile(rf"^{DAY_PREFIX}(\d{{8}})$")
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PartitioningUnsupportedError(StoreError):
    """Partitioning was asked of a database that is not PostgreSQL."""


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of ``transition_history``; ``lower``/``upper`` are None for DEFAULT."""

    name: str
    lower: datetime | None
    upper: datetime | None

    @property
    def is_day(self) -> bool:
        """A daily partition (the only kind the pruner drops)."""
        return _DAY_NAME.match(self.name) is not None


@dataclass(frozen=True, slots=True)
class Conversion:
    """What :func:`partition_history` did."""

    converted: bool  # False: the table was already partitioned
    legacy_rows: int
    legacy_range: tuple[datetime, datetime] | None
    created: list[str]  # partitions created by this call (days and DEFAULT)


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of ``moment``'s day."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def day_name(day: date) -> str:
    """The name of the daily partition holding ``day``."""
    return f"{DAY_PREFIX}{day:%Y%m%d}"


def _require_postgres(conn: Connection) -> None:
    if not is_postgres(conn):
        raise PartitioningUnsupportedError(
            f"history partitioning needs PostgreSQL (this database is {conn.dialect.name})"
        )


def _literal(moment: datetime) -> str:
    return f"'{moment.astimezone(UTC).isoformat(sep=' ')}'"


def is_partitioned(conn: Connection) -> bool:
    """Whether ``transition_history`` is a partitioned table (always False on SQLite)."""
    if not is_postgres(conn):
        return False
    query = sa.text(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.oid = to_regclass(:name)"
    )
    return conn.execute(query, {"name": TABLE}).first() is not None


def partitions(conn: Connection) -> list[Partition]:
    """Every partition of ``transition_history`` with its bounds, oldest first (DEFAULT last)."""
    conn.execute(sa.text("SET LOCAL TimeZone = 'UTC'"))  # bounds are rendered in UTC
    query = sa.text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:name)"
    )
    found = []
    for name, bound in conn.execute(query, {"name": TABLE}):
        match = _BOUND.search(bound or "")
        if match is None:
            found.append(Partition(name, None, None))
        else:
            lower, upper = (datetime.fromisoformat(v) for v in match.groups())
            found.append(Partition(name, lower, upper))
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: (p.lower is None, p.lower or far))


def _overlaps(existing: list[Partition], lower: datetime, upper: datetime) -> bool:
    return any(
        p.lower is not None and p.upper is not None and p.lower < upper and lower < p.upper
        for p in existing
    )


def _default_rows(conn: Connection, lower: datetime, upper: datetime) -> int:
    query = sa.text(
        f'SELECT count(*) FROM "{DEFAULT}" '
        f"WHERE created_at >= {_literal(lower)} AND created_at < {_literal(upper)}"
    )
    return int(conn.execute(query).scalar_one())


def create_days(conn: Connection, today: datetime, days_ahead: int) -> list[str]:
    """Create the daily partitions from ``today``'s day through ``days_ahead`` days later that
    do not exist yet (and the DEFAULT partition if missing); returns the names created.

    A day that overlaps an existing partition (the legacy one) is skipped, and so is a day whose
    rows already landed in the DEFAULT partition (PostgreSQL would refuse the new partition; those
    rows then stay in DEFAULT and are pruned row by row)."""
    _require_postgres(conn)
    existing = partitions(conn)
    created = []
    if not any(p.name == DEFAULT for p in existing):
        conn.execute(sa.text(f'CREATE TABLE "{DEFAULT}" PARTITION OF "{TABLE}" DEFAULT'))
        created.append(DEFAULT)
    has_default_rows = False
    if DEFAULT not in created:
        has_default_rows = (
            conn.execute(sa.text(f'SELECT 1 FROM "{DEFAULT}" LIMIT 1')).first() is not None
        )
    first = day_start(today)
    for offset in range(days_ahead + 1):
        lower = first + timedelta(days=offset)
        upper = lower + timedelta(days=1)
        if _overlaps(existing, lower, upper):
            continue
        if has_default_rows and _default_rows(conn, lower, upper):
            continue
        name = day_name(lower.date())
        conn.execute(
            sa.text(
                f'CREATE TABLE "{name}" PARTITION OF "{TABLE}" '
                f"FOR VALUES FROM ({_literal(lower)}) TO ({_literal(upper)})"
            )
        )
        existing.append(Partition(name, lower, upper))
        created.append(name)
    return created


def partition_history(conn: Connection, today: datetime, days_ahead: int) -> Conversion:
    """Convert ``transition_history`` into a table partitioned by day (see the module's
    docstring), or only create its missing partitions when it already is one. Runs in the
    caller's transaction: the conversion is all or nothing."""
    _require_postgres(conn)
    conn.execute(sa.text(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE'))
    if is_partitioned(conn):
        return Conversion(False, 0, None, create_days(conn, today, days_ahead))
    if conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": LEGACY}).scalar_one() is not None:
        raise StoreError(f"{LEGACY} already exists: rename or drop it first")
    oldest, newest, rows = conn.execute(
        sa.text(f'SELECT min(created_at), max(created_at), count(*) FROM "{TABLE}"')
    ).one()
    lower = day_start(oldest) if oldest is not None else EPOCH
    upper = day_start(today)
    if newest is not None and newest >= upper:
        upper = day_start(newest) + timedelta(days=1)
    sequence = conn.execute(
        sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": TABLE}
    ).scalar_one()
    for statement in _conversion_statements(lower, upper, sequence):
        conn.execute(sa.text(statement))
    created = create_days(conn, today, days_ahead)
    return Conversion(True, int(rows), (lower, upper), created)


def _conversion_statements(lower: datetime, upper: datetime, sequence: str | None) -> list[str]:
    legacy_names = [
        # index names are unique per schema: the legacy table's give way to the new table's
        (f"pk_{TABLE}", f"pk_{LEGACY}"),
        (f"uq_{TABLE}_machine_entity_id_version", f"uq_{LEGACY}_machine_entity_id_version"),
        (f"ix_{TABLE}_created_at", f"ix_{LEGACY}_created_at"),
        (f"ix_{TABLE}_commit_xid_id", f"ix_{LEGACY}_commit_xid_id"),
    ]
    statements = [f'ALTER TABLE "{TABLE}" RENAME TO "{LEGACY}"']
    statements += [f'ALTER INDEX IF EXISTS "{old}" RENAME TO "{new}"' for old, new in legacy_names]
    statements += [
        # the same columns, types, NOT NULLs and defaults (the id default: the same sequence)
        f'CREATE TABLE "{TABLE}" (LIKE "{LEGACY}" INCLUDING DEFAULTS INCLUDING STORAGE, '
        f'CONSTRAINT "pk_{TABLE}" PRIMARY KEY (id, created_at), '
        f'CONSTRAINT "uq_{TABLE}_machine_entity_id_version_created_at" '
        "UNIQUE (machine, entity_id, version, created_at)) PARTITION BY RANGE (created_at)",
        f'CREATE INDEX "ix_{TABLE}_created_at" ON "{TABLE}" (created_at)',
        # the transition feed's commit-safe order (feed_queries)
        f'CREATE INDEX "ix_{TABLE}_commit_xid_id" ON "{TABLE}" (commit_xid, id)',
    ]
    if sequence is not None:
        # owned by the new column, so dropping the legacy partition never drops the sequence
        statements.append(f'ALTER SEQUENCE {sequence} OWNED BY "{TABLE}".id')
    check = f"ck_{LEGACY}_range"
    statements += [
        # a partition cannot keep a primary key of its own: it takes the parent's (id, created_at)
        f'ALTER TABLE "{LEGACY}" DROP CONSTRAINT "pk_{LEGACY}"',
        # validated once here, so ATTACH proves the bounds from it instead of scanning again
        f'ALTER TABLE "{LEGACY}" ADD CONSTRAINT "{check}" CHECK (created_at >= '
        f"{_literal(lower)} AND created_at < {_literal(upper)})",
        f'ALTER TABLE "{TABLE}" ATTACH PARTITION "{LEGACY}" '
        f"FOR VALUES FROM ({_literal(lower)}) TO ({_literal(upper)})",
        f'ALTER TABLE "{LEGACY}" DROP CONSTRAINT "{check}"',
    ]
    return statements


def count_rows(conn: Connection, partition: Partition) -> int:
    """The rows ``partition`` holds."""
    return int(conn.execute(sa.text(f'SELECT count(*) FROM "{partition.name}"')).scalar_one())


def droppable(conn: Connection, cutoff: datetime) -> list[Partition]:
    """The daily partitions whose every possible row is older than ``cutoff``, oldest first."""
    return [p for p in partitions(conn) if p.is_day and p.upper is not None and p.upper <= cutoff]


def drop_partition(conn: Connection, partition: Partition) -> None:
    """Drop one daily partition with its rows (a catalogue change, not a delete per row)."""
    if not partition.is_day:
        raise StoreError(f"{partition.name} is not a daily partition of {TABLE}")
    conn.execute(sa.text(f'DROP TABLE "{partition.name}"'))


def set_lock_timeout(conn: Connection, seconds: float) -> None:
    """Give up (an error) instead of queueing the fleet's writers behind a partition change
    that waits for a lock longer than ``seconds`` (this transaction only)."""
    conn.execute(sa.text(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'"))


__all__ = [
    "DAY_PREFIX",
    "DEFAULT",
    "LEGACY",
    "TABLE",
    "Conversion",
    "Partition",
    "PartitioningUnsupportedError",
    "count_rows",
    "create_days",
    "day_name",
    "day_start",
    "drop_partition",
    "droppable",
    "is_partitioned",
    "partition_history",
    "partitions",
    "set_lock_timeout",
]
