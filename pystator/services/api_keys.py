"""API keys of the HTTP API: created once (the key is shown then and never again), stored as
their sha256, checked on each request, revoked.

A key looks like ``psk_<8 characters>_<43 characters>``: 32 random bytes, URL-safe. Its first
12 characters (``psk_`` and the 8 after) are kept in clear as the ``prefix`` that listings
show. Keys are random, not chosen by people, so one sha256 is as strong as a slow password hash
would be, and checking a key costs one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.engine import Engine

from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import InvalidEventError, NotFoundError
from pystator.stores.sql import apikey_queries, audit_queries
from pystator.stores.sql.apikey_queries import ApiKeyRecord
from pystator.stores.sql.audit_queries import Actor, ChangeKind
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.engine import translate_errors

KEY_PREFIX = "psk_"
PREFIX_LENGTH = 12
NAME_LENGTH = 200


class Role(StrEnum):
    """What a principal may do: viewers read, operators also submit and repair, admins also
    manage machines and keys. Each role includes the ones before it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer, 1 for operator, 2 for admin."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """True when this role may do what ``needed`` may."""
        return self.rank >= needed.rank


def parse_role(value: str) -> Role:
    """``value`` as a :class:`Role`; :class:`InvalidEventError` naming the accepted ones."""
    try:
        return Role(value)
    except ValueError:
        accepted = ", ".join(r.value for r in Role)
        raise InvalidEventError(
            f"role: {value!r} is not a role; expected one of {accepted}",
            details={"field": "role", "rule": "unknown"},
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewKey:
    """A key just created: ``secret`` is the key itself, shown this once."""

    record: ApiKeyRecord
    secret: str


def hash_key(secret: str) -> str:
    """What is stored of a key: its sha256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_key(token: str) -> bool:
    """True when ``token`` has an API key's shape (as opposed to a JWT)."""
    return token.startswith(KEY_PREFIX)


def create_key(
    engine: Engine, *, role: str, name: str, by: Actor, clock: Clock = utc_now
) -> NewKey:
    """Create a key with ``role``; returns it with the secret (stored only as its hash). The
    audit row (``api_key.created``, by ``by``) is written in the same transaction."""
    checked = parse_role(role)
    if not name.strip() or len(name) > NAME_LENGTH:
        raise InvalidEventError(
            f"name: must be 1 to {NAME_LENGTH} characters", details={"field": "name"}
        )
    secret = f"{KEY_PREFIX}{secrets.token_urlsafe(6)[:8]}_{secrets.token_urlsafe(32)}"
    now = clock()
    with translate_errors("api keys"), transaction(engine) as conn:
        key_id = apikey_queries.insert_key(
            conn,
            name=name,
            prefix=secret[:PREFIX_LENGTH],
            key_hash=hash_key(secret),
            role=checked.value,
            created_by=by.principal,
            now=now,
        )
        record = apikey_queries.get_key(conn, key_id)
        audit_queries.record_change(
            conn,
            by,
            at=now,
            kind=ChangeKind.API_KEY_CREATED,
            status=201,
            target=f"key:{key_id}",
            selection={"role": checked.value, "name": name},
        )
    assert record is not None
    return NewKey(record=record, secret=secret)


def verify_key(engine: Engine, secret: str) -> ApiKeyRecord | None:
    """The active key ``secret`` is, or None (unknown or revoked)."""
    with translate_errors("api keys"), engine.connect() as conn:
        return apikey_queries.find_active(conn, hash_key(secret))


def list_keys(engine: Engine, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
    """Keys (never their secrets), oldest first."""
    with translate_errors("api keys"), engine.connect() as conn:
        return apikey_queries.list_keys(conn, include_revoked=include_revoked)


def active_key_count(engine: Engine) -> int:
    """How many keys can be used."""
    with translate_errors("api keys"), engine.connect() as conn:
        return apikey_queries.count_active(conn)


def revoke_key(engine: Engine, key_id: int, *, by: Actor, clock: Clock = utc_now) -> ApiKeyRecord:
    """Revoke a key (it stops working at once in this process, within the API's key cache
    time elsewhere); :class:`NotFoundError` when no active key has that id. The audit row
    (``api_key.revoked``, by ``by``) is written in the same transaction."""
    now = clock()
    with translate_errors("api keys"), transaction(engine) as conn:
        if not apikey_queries.revoke(conn, key_id, now):
            raise NotFoundError(f"no active API key with id {key_id}", details={"key_id": key_id})
        record = apikey_queries.get_key(conn, key_id)
        audit_queries.record_change(
            conn,
            by,
            at=now,
            kind=ChangeKind.API_KEY_REVOKED,
            status=200,
            target=f"key:{key_id}",
            affected=1,
        )
    assert record is not None
    return record


__all__ = [
    "KEY_PREFIX",
    "NewKey",
    "Role",
    "active_key_count",
    "create_key",
    "hash_key",
    "list_keys",
    "looks_like_key",
    "parse_role",
    "revoke_key",
    "verify_key",
]
