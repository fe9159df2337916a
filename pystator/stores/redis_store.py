"""Redis state stores (sync and async): atomic compare-and-set in a Lua script on the server.

Per entity, a hash ``<prefix>:{<machine>|<entity>}:state`` holds ``version`` and ``data`` (the
record as JSON) and a list ``…:history`` holds one JSON history entry per version. The script
checks the version, writes the state and appends the history entry in one atomic step; the hash
tag keeps both keys on one cluster slot. Redis errors are translated in :func:`translate_errors`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

try:
    import redis
    import redis.asyncio as aredis
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Redis state store needs: pip install 'pystator[redis]'") from exc

from pystator.fsm_core.errors import StaleVersionError, StoreError, StoreUnavailableError
from pystator.fsm_core.records import EntityRecord, HistoryEntry
from pystator.stores.base import check_history, check_version
from pystator.stores.documented import AsyncDocumentedStoreMethods, DocumentedStoreMethods

DEFAULT_KEY_PREFIX = "pystator"
SOCKET_TIMEOUT_SECONDS = 10.0

# KEYS: state hash, history list. ARGV: expected version, new version, record JSON, history JSON.
# Returns {1, new_version} when written, {0, actual_version} on a version mismatch.
CAS_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'version')
local actual = 0
if current then actual = tonumber(current) end
if actual ~= tonumber(ARGV[1]) then
  return {0, actual}
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'data', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4])
end
return {1, tonumber(ARGV[2])}
"""


@contextmanager
def translate_errors() -> Iterator[None]:
    """Translate redis-py errors raised inside the block into the pystator error tree."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailableError(f"Redis store unavailable: {exc}") from exc
    except redis.RedisError as exc:
        raise StoreError(f"Redis store failed: {exc}") from exc


def _keys(prefix: str, machine: str, entity_id: str) -> tuple[str, str]:
    base = f"{prefix}:{{{machine}|{entity_id}}}"
    return f"{base}:state", f"{base}:history"


def _dt(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_dt(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _dumps(value: Mapping[str, Any]) -> str:
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"Redis store: value is not JSON serializable: {exc}") from exc


def encode_record(record: EntityRecord) -> str:
    """The JSON stored in the state hash's ``data`` field."""
    now = datetime.now(UTC)
    return _dumps(
        {
            "state": record.state,
            "context": dict(record.context),
            "entries": dict(record.entries),
            "created_at": _dt(record.created_at or now),
            "updated_at": _dt(record.updated_at or now),
        }
    )


def decode_record(
    machine: str, entity_id: str, version: bytes | str, data: bytes | str
) -> EntityRecord:
    """Rebuild an :class:`EntityRecord` from the state hash."""
    doc = json.loads(data)
    return EntityRecord(
        machine=machine,
        entity_id=entity_id,
        state=doc["state"],
        context=doc["context"],
        version=int(version),
        entries={str(k): int(v) for k, v in doc["entries"].items()},
        created_at=_parse_dt(doc["created_at"]),
        updated_at=_parse_dt(doc["updated_at"]),
    )


def encode_history(entry: HistoryEntry | None) -> str:
    """The JSON of one history list item ('' for none)."""
    if entry is None:
        return ""
    return _dumps({**entry.transition_fields(), "created_at": _dt(entry.created_at)})


def decode_history(machine: str, entity_id: str, raw: bytes | str) -> HistoryEntry:
    """Rebuild a :class:`HistoryEntry` from one history list item."""
    doc = json.loads(raw)
    return HistoryEntry(
        machine=machine,
        entity_id=entity_id,
        version=int(doc["version"]),
        source_state=doc["source_state"],
        target_state=doc["target_state"],
        trigger=doc["trigger"],
        event_id=doc["event_id"],
        origin=doc["origin"],
        actions=tuple(doc["actions"]),
        payload=doc["payload"],
        created_at=_parse_dt(doc["created_at"]) or datetime.now(UTC),
    )


def _cas_args(
    record: EntityRecord, expected_version: int, history: HistoryEntry | None
) -> list[Any]:
    check_version(record, expected_version)
    check_history(record, history)
    return [expected_version, record.version, encode_record(record), encode_history(history)]


def _check_cas(reply: list[Any], record: EntityRecord, expected_version: int) -> None:
    written, actual = int(reply[0]), int(reply[1])
    if not written:
        raise StaleVersionError(
            f"entity {record.entity_id!r} of machine {record.machine!r}: expected version "
            f"{expected_version}, found {actual}",
            entity_id=record.entity_id,
            expected_version=expected_version,
            actual_version=actual,
        )


def _record_from_hash(
    machine: str, entity_id: str, fields: Mapping[bytes | str, bytes | str]
) -> EntityRecord | None:
    if not fields:
        return None
    by_name = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}
    return decode_record(machine, entity_id, by_name["version"], by_name["data"])


class RedisStateStore(DocumentedStoreMethods):
    """A :class:`~pystator.stores.base.VersionedStateStore` in Redis (sync client)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("pass exactly one of url or client")
        self._owns_client = client is None
        self.client: redis.Redis = client or redis.Redis.from_url(
            url or "", socket_timeout=SOCKET_TIMEOUT_SECONDS
        )
        self.key_prefix = key_prefix
        self._cas = self.client.register_script(CAS_SCRIPT)

    def connect(self) -> None:
        """Check the server answers (the documented ``connect``; the client connects lazily)."""
        with translate_errors():
            self.client.ping()

    def load(self, machine: str, entity_id: str) -> EntityRecord | None:
        """The stored record of the entity, or None."""
        state_key, _ = _keys(self.key_prefix, machine, entity_id)
        with translate_errors():
            fields = self.client.hgetall(state_key)
        return _record_from_hash(machine, entity_id, fields)

    def save(
        self,
        record: EntityRecord,
        *,
        expected_version: int,
        history: HistoryEntry | None = None,
    ) -> None:
        """Compare-and-set the record (and append its history) atomically on the server."""
        args = _cas_args(record, expected_version, history)
        keys = _keys(self.key_prefix, record.machine, record.entity_id)
        with translate_errors():
            reply = self._cas(keys=list(keys), args=args)
        _check_cas(reply, record, expected_version)

    def history(self, machine: str, entity_id: str) -> list[HistoryEntry]:
        """Every history entry of the entity, oldest version first."""
        _, history_key = _keys(self.key_prefix, machine, entity_id)
        with translate_errors():
            items = self.client.lrange(history_key, 0, -1)
        return [decode_history(machine, entity_id, raw) for raw in items]

    def close(self) -> None:
        """Close the client if this store created it."""
        if self._owns_client:
            self.client.close()


class AsyncRedisStateStore(AsyncDocumentedStoreMethods):
    """An :class:`~pystator.stores.base.AsyncVersionedStateStore` in Redis (``redis.asyncio`` client)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aredis.Redis | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("pass exactly one of url or client")
        self._owns_client = client is None
        self.client: aredis.Redis = client or aredis.Redis.from_url(
            url or "", socket_timeout=SOCKET_TIMEOUT_SECONDS
        )
        self.key_prefix = key_prefix
        self._cas = self.client.register_script(CAS_SCRIPT)

    async def load(self, machine: str, entity_id: str) -> EntityRecord | None:
        """The stored record of the entity, or None."""
        state_key, _ = _keys(self.key_prefix, machine, entity_id)
        with translate_errors():
            fields = await self.client.hgetall(state_key)
        return _record_from_hash(machine, entity_id, fields)

    async def save(
        self,
        record: EntityRecord,
        *,
        expected_version: int,
        history: HistoryEntry | None = None,
    ) -> None:
        """Compare-and-set the record (and append its history) atomically on the server."""
        args = _cas_args(record, expected_version, history)
        keys = _keys(self.key_prefix, record.machine, record.entity_id)
        with translate_errors():
            reply = await self._cas(keys=list(keys), args=args)
        _check_cas(reply, record, expected_version)

    async def history(self, machine: str, entity_id: str) -> list[HistoryEntry]:
        """Every history entry of the entity, oldest version first."""
        _, history_key = _keys(self.key_prefix, machine, entity_id)
        with translate_errors():
            items = await self.client.lrange(history_key, 0, -1)
        return [decode_history(machine, entity_id, raw) for raw in items]

    async def close(self) -> None:
        """Close the client if this store created it."""
        if self._owns_client:
            await self.client.aclose()


__all__ = ["AsyncRedisStateStore", "RedisStateStore", "translate_errors"]
