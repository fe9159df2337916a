"""Test helpers: run async stores through the sync store interface, so one suite covers both."""

from __future__ import annotations

import asyncio
from typing import Any

from pystator.fsm_core.records import EntityRecord, HistoryEntry


class BlockingStore:
    """Drives an async store on a private event loop with the sync ``StateStore`` methods."""

    def __init__(self, store: Any) -> None:
        self.inner = store
        self._runner = asyncio.Runner()

    def load(self, machine: str, entity_id: str) -> EntityRecord | None:
        return self._runner.run(self.inner.load(machine, entity_id))  # type: ignore[no-any-return]

    def save(
        self,
        record: EntityRecord,
        *,
        expected_version: int,
        history: HistoryEntry | None = None,
    ) -> None:
        self._runner.run(
            self.inner.save(record, expected_version=expected_version, history=history)
        )

    def history(self, machine: str, entity_id: str) -> list[HistoryEntry]:
        return self._runner.run(self.inner.history(machine, entity_id))  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            self._runner.run(self.inner.close())
        finally:
            self._runner.close()
