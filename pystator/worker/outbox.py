"""Running actions after commit, from the ``action_outbox`` table, at least once.

**The dedup token convention.** Every action receives a copy of the entity context with one extra
key, ``_pystator``::

    {"action_id": 17,        # the outbox row id: unique per planned action, stable across retries
     "event_id": 42,         # the worker event that caused it (None for timers fired elsewhere)
     "machine": "order", "entity_id": "o-1", "entity_version": 3,
     "attempt": 1}

An action that must take effect once records ``action_id`` (e.g. a unique column, or an
``Idempotency-Key`` header) and ignores a repeat. Actions run in outbox id order; a raising action
is retried with backoff and, after ``max_attempts``, marked ``dead`` with its errors kept.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from pystator.clock import Clock, utc_now
from pystator.fsm_core.backoff import Backoff, RandomSource
from pystator.fsm_core.errors import ActionNotFoundError
from pystator.stores.sql import outbox_queries
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.rows import OutboxRow
from pystator.worker.failures import describe_error
from pystator.worker.observer import FleetObserver
from pystator.worker.processor import default_retry
from pystator.worker.registry import MachineRegistry

#: Key of the dedup token block in the context handed to actions.
TOKEN_KEY = "_pystator"
DEFAULT_ACTION_MAX_ATTEMPTS = 5
DEFAULT_SWEEP_LIMIT = 200


def action_context(row: OutboxRow) -> dict[str, Any]:
    """The context an action receives: the entity context plus the ``_pystator`` token block."""
    return {
        **row.context,
        TOKEN_KEY: {
            "action_id": row.id,
            "event_id": row.event_id,
            "machine": row.machine,
            "entity_id": row.entity_id,
            "entity_version": row.entity_version,
            "attempt": row.attempts + 1,
        },
    }


class OutboxRunner:
    """Runs outbox rows with the machines' action registries and records the outcome."""

    def __init__(
        self,
        engine: Engine,
        machines: MachineRegistry,
        *,
        retry: Backoff | None = None,
        max_attempts: int = DEFAULT_ACTION_MAX_ATTEMPTS,
        lease: timedelta = timedelta(seconds=30),
        clock: Clock = utc_now,
        rand: RandomSource = random.random,
        observer: FleetObserver | None = None,
    ) -> None:
        self.engine = engine
        self.machines = machines
        self.observer = observer or FleetObserver()
        self.retry = retry or default_retry()
        self.max_attempts = max_attempts
        self.lease = lease
        self.clock = clock
        self.rand = rand

    def run_ids(self, ids: Sequence[int]) -> int:
        """Run freshly committed actions by id (the worker's after-commit path)."""
        if not ids:
            return 0
        with translate_errors("action outbox"), self.engine.connect() as conn:
            rows = outbox_queries.load_outbox(conn, ids)
        return self.run(rows)

    def sweep(self, limit: int = DEFAULT_SWEEP_LIMIT) -> int:
        """Claim and run stranded or retry-due actions (the relay's outbox sweep)."""
        with translate_errors("action outbox"), transaction(self.engine) as conn:
            rows = outbox_queries.claim_outbox(conn, self.clock(), limit, lease=self.lease)
        return self.run(rows)

    def run(self, rows: Sequence[OutboxRow]) -> int:
        """Run ``rows`` in order; returns how many succeeded."""
        done: list[int] = []
        failures: list[tuple[OutboxRow, Exception]] = []
        for row in rows:
            started = time.perf_counter()
            try:
                self._invoke(row)
            except Exception as exc:  # the action failed: recorded and retried below
                failures.append((row, exc))
                dead = row.attempts + 1 >= self.max_attempts
                self.observer.action_finished(row, exc, dead, time.perf_counter() - started)
            else:
                done.append(row.id)
                self.observer.action_finished(row, None, False, time.perf_counter() - started)
        self._record(done, failures)
        return len(done)

    def _invoke(self, row: OutboxRow) -> None:
        machine = self.machines.get(row.machine)
        registry = machine.action_registry
        registered = registry.resolve(row.action) if registry is not None else None
        if registered is None:
            raise ActionNotFoundError(f"action {row.action!r} is not registered")
        result = registered.call(action_context(row), row.params)
        if inspect.isawaitable(result):
            _run_coroutine(result)

    def _record(self, done: list[int], failures: list[tuple[OutboxRow, Exception]]) -> None:
        now = self.clock()
        with translate_errors("action outbox"), transaction(self.engine) as conn:
            outbox_queries.complete_outbox(conn, done, now)
            for row, exc in failures:
                attempt = row.attempts + 1
                errors = [*map(dict, row.errors), describe_error(exc, attempt, now)]
                outbox_queries.fail_outbox(
                    conn, row.id, errors, now, retry_at=self._retry_at(attempt, now)
                )

    def _retry_at(self, attempt: int, now: datetime) -> datetime | None:
        if attempt >= self.max_attempts:
            return None
        return self.retry.next_time(attempt, now, self.rand)


def _run_coroutine(awaitable: Any) -> None:
    async def _wait() -> None:
        await awaitable

    asyncio.run(_wait())


__all__ = ["TOKEN_KEY", "OutboxRunner", "action_context"]
