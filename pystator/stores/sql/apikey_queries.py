"""Every query on ``api_keys``. Keys are stored as their sha256 (never the key itself)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pystator.fsm_core.clock import as_utc, as_utc_or_none
from pystator.stores.sql.schema import api_keys

_K = api_keys.c


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyRecord:
    """One ``api_keys`` row, without its hash."""

    id: int
    name: str
    prefix: str
    role: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


def _record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=int(row["id"]),
        name=row["name"],
        prefix=row["prefix"],
        role=row["role"],
        created_by=row["created_by"],
        created_at=as_utc(row["created_at"]),
        revoked_at=as_utc_or_none(row["revoked_at"]),
    )


_COLUMNS = (_K.id, _K.name, _K.prefix, _K.role, _K.created_by, _K.created_at, _K.revoked_at)


def insert_key(
    conn: Connection,
    *,
    name: str,
    prefix: str,
    key_hash: str,
    role: str,
    created_by: str,
    now: datetime,
) -> int:
    """Store a key's hash; returns its id."""
    result = conn.execute(
        sa.insert(api_keys)
        .values(
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            role=role,
            created_by=created_by,
            created_at=now,
        )
        .returning(_K.id)
    )
    return int(result.scalar_one())


def find_active(conn: Connection, key_hash: str) -> ApiKeyRecord | None:
    """The unrevoked key whose hash is ``key_hash``."""
    query = sa.select(*_COLUMNS).where(_K.key_hash == key_hash, _K.revoked_at.is_(None))
    row = conn.execute(query).mappings().first()
    return None if row is None else _record(row)


def get_key(conn: Connection, key_id: int) -> ApiKeyRecord | None:
    """One key by id (revoked or not)."""
    row = conn.execute(sa.select(*_COLUMNS).where(_K.id == key_id)).mappings().first()
    return None if row is None else _record(row)


def list_keys(conn: Connection, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
    """Keys, oldest first."""
    query = sa.select(*_COLUMNS).order_by(_K.id)
    if not include_revoked:
        query = query.where(_K.revoked_at.is_(None))
    return [_record(r) for r in conn.execute(query).mappings()]


def count_active(conn: Connection) -> int:
    """How many keys are not revoked."""
    query = sa.select(sa.func.count()).select_from(api_keys).where(_K.revoked_at.is_(None))
    return int(conn.execute(query).scalar_one())


def revoke(conn: Connection, key_id: int, now: datetime) -> bool:
    """Revoke a key; False when it does not exist or was revoked already."""
    result = conn.execute(
        sa.update(api_keys).where(_K.id == key_id, _K.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)


__all__ = [
    "ApiKeyRecord",
    "count_active",
    "find_active",
    "get_key",
    "insert_key",
    "list_keys",
    "revoke",
]
