"""The state store protocols.

``StateStore`` / ``AsyncStateStore`` are the documented protocol (``get_state``, ``set_state``,
``get_context``, and their ``a…`` forms): what a user's store implements. Every store we ship also
implements the versioned protocol below, which the Orchestrator and the worker fleet use:

Every store keys records by ``(machine, entity_id)`` and writes only with a version check:
``save(record, expected_version=N)`` succeeds when the stored version is ``N`` (``0`` = the
entity must not exist yet) and raises :class:`~pystator.fsm_core.errors.StaleVersionError`
otherwise — it never overwrites. The optional history entry is written atomically with the
state, so a store's history has exactly one row per version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pystator.fsm_core.records import EntityRecord, HistoryEntry


@runtime_checkable
class StateStore(Protocol):
    """The documented synchronous store protocol (a user's store needs only these)."""

    def get_state(self, entity_id: str) -> str | None:
        """The entity's current state, or None if it does not exist."""

    def set_state(
        self, entity_id: str, state: str, *, metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Persist the new state; ``metadata`` is the entity's context to keep with it."""

    def get_context(self, entity_id: str) -> dict[str, Any]:
        """The stored context, or an empty dict (optional for a user's store)."""


@runtime_checkable
class AsyncStateStore(Protocol):
    """The documented asynchronous store protocol."""

    async def aget_state(self, entity_id: str) -> str | None:
        """The entity's current state, or None if it does not exist."""

    async def aset_state(
        self, entity_id: str, state: str, *, metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Persist the new state; ``metadata`` is the entity's context to keep with it."""

    async def aget_context(self, entity_id: str) -> dict[str, Any]:
        """The stored context, or an empty dict (optional for a user's store)."""


@runtime_checkable
class VersionedStateStore(Protocol):
    """A synchronous versioned store (pystator's own stores; what the Orchestrator drives)."""

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
class AsyncVersionedStateStore(Protocol):
    """An asynchronous versioned store: the same operations, awaited."""

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


__all__ = [
    "AsyncStateStore",
    "AsyncVersionedStateStore",
    "StateStore",
    "VersionedStateStore",
    "check_history",
    "check_version",
]
