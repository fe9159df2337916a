"""The state store protocols: versioned reads and writes of one entity's record, plus history.

Every store keys records by ``(machine, entity_id)`` and writes only with a version check:
``save(record, expected_version=N)`` succeeds when the stored version is ``N`` (``0`` = the
entity must not exist yet) and raises :class:`~pystator.fsm_core.errors.StaleVersionError`
otherwise — it never overwrites. The optional history entry is written atomically with the
state, so a store's history has exactly one row per version.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pystator.fsm_core.records import EntityRecord, HistoryEntry


@runtime_checkable
class StateStore(Protocol):
    """A synchronous state store."""

    def load(self, machine: str, entity_id: str) -> EntityRecord | None:
        """The stored record of the entity, or None if it was never written."""

    def save(
        self,
        record: EntityRecord,
        *,
        expected_version: int,
        history: HistoryEntry | None = None,
    ) -> None:
        """Write ``record`` if the stored version is ``expected_version`` (0 = create)."""

    def history(self, machine: str, entity_id: str) -> list[HistoryEntry]:
        """Every history entry of the entity, oldest version first."""

    def close(self) -> None:
        """Release connections (idempotent)."""


@runtime_checkable
class AsyncStateStore(Protocol):
    """An asynchronous state store: the same operations, awaited."""

    async def load(self, machine: str, entity_id: str) -> EntityRecord | None:
        """The stored record of the entity, or None if it was never written."""

    async def save(
        self,
        record: EntityRecord,
        *,
        expected_version: int,
        history: HistoryEntry | None = None,
    ) -> None:
        """Write ``record`` if the stored version is ``expected_version`` (0 = create)."""

    async def history(self, machine: str, entity_id: str) -> list[HistoryEntry]:
        """Every history entry of the entity, oldest version first."""

    async def close(self) -> None:
        """Release connections (idempotent)."""


def check_history(record: EntityRecord, history: HistoryEntry | None) -> None:
    """Refuse a history entry that does not describe ``record``'s write (a caller bug)."""
    if history is None:
        return
    if (history.machine, history.entity_id, history.version) != (
        record.machine,
        record.entity_id,
        record.version,
    ):
        raise ValueError(
            f"history entry ({history.machine}, {history.entity_id}, v{history.version}) does not "
            f"match the record ({record.machine}, {record.entity_id}, v{record.version})"
        )


def check_version(record: EntityRecord, expected_version: int) -> None:
    """Refuse a write whose new version is not ``expected_version + 1`` (a caller bug)."""
    if expected_version < 0 or record.version != expected_version + 1:
        raise ValueError(
            f"record version {record.version} must be expected_version + 1 "
            f"(expected_version={expected_version})"
        )


__all__ = ["AsyncStateStore", "StateStore", "check_history", "check_version"]
