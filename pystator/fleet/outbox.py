"""Running actions after commit, from the ``action_outbox`` table, at least once.

**The dedup token convention.** Every action receives a copy of the entity context with one extra
key, ``_pystator``::

    {"action_id": 17,        # the outbox row id: unique per planned action, stable across retries
     "event_id": 42,         # the worker event that caused it (None for timers fired elsewhere)
     "machine": "order", "entity_id": "o-1", "entity_version": 3,
     "attempt": 1}

An action that must take effect once records ``action_id`` (e.g. a unique column, or an
``Idempotency-Key`` header) and ignores a repeat. Actions run in outbox id order; a raising action
is retried with backoff (``PYSTATOR_ACTION_RETRY_BASE_SECONDS`` doubling up to
``…_MAX_SECONDS``) and, after ``PYSTATOR_ACTION_MAX_ATTEMPTS``, marked ``dead`` with its errors
kept; operators can replay or discard it.

**Leases and timeouts.** A committed row becomes claimable by the relay's sweep only after its
lease; the worker that committed it runs it before then. Each action runs with a timeout
(``PYSTATOR_ACTION_TIMEOUT_SECONDS``) on an action thread: one that overruns is recorded as a
failure and retried later, and its thread, still running, is reported to the health check. An
action is only started inline while its timeout ends within the lease, so the sweep never runs
an action that an inline run may still be running.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from pystator.config import tracing
from pystator.config.logs import get_logger
from pystator.config.settings import (
    DEFAULT_ACTION_MAX_ATTEMPTS,
    DEFAULT_ACTION_RETRY_BASE_SECONDS,
    DEFAULT_ACTION_RETRY_MAX_SECONDS,
    DEFAULT_ACTION_THREADS,
    DEFAULT_ACTION_TIMEOUT_SECONDS,
)
from pystator.fleet.observer import FleetObserver
from pystator.fsm_core.backoff import Backoff, RandomSource
from pystator.fsm_core.clock import Clock
from pystator.fsm_core.context import TOKEN_KEY
from pystator.fsm_core.errors import (
    ActionNotFoundError,
    FSMTimeoutError,
    StoreError,
    StoreUnavailableError,
    describe_error,
)
from pystator.registry.machines import MachineRegistry
from pystator.stores.sql import outbox_queries
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.db_clock import bind_now, read_now
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.rows import OutboxRow

#: Called once an action has failed its last attempt (the machine's error policy may move the
#: entity to its fallback state).
DeadAction = Callable[[OutboxRow, Exception], object]
#: Runs an outbox row that is not a machine's action (e.g. a webhook delivery), by action name.
OutboxHandler = Callable[[OutboxRow], object]
#: Writes more of a run's outcome in the transaction that records it: ``(connection, ids done,
#: failures)`` (e.g. the webhook delivery log).
OutcomeRecorder = Callable[[Any, Sequence[int], Sequence[tuple[OutboxRow, Exception]]], None]

DEFAULT_SWEEP_LIMIT = 200
#: Margin of a lease over the action timeout it must cover.
LEASE_MARGIN_SECONDS = 30.0

log = get_logger("pystator.outbox")


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


def lease_for(timeout: float | None) -> timedelta:
    """The outbox lease an action timeout needs: twice the timeout plus a margin."""
    return timedelta(seconds=2 * (timeout or 0.0) + LEASE_MARGIN_SECONDS)


def default_action_retry() -> Backoff:
    """Failed actions: doubling from 1 s up to an hour between attempts."""
    return Backoff(
        base_seconds=DEFAULT_ACTION_RETRY_BASE_SECONDS,
        max_seconds=DEFAULT_ACTION_RETRY_MAX_SECONDS,
    )


class OutboxRunner:
    """Runs outbox rows with the machines' action registries and records the outcome."""

    def __init__(
        self,
        engine: Engine,
        machines: MachineRegistry,
        *,
        retry: Backoff | None = None,
        max_attempts: int = DEFAULT_ACTION_MAX_ATTEMPTS,
        timeout: float | None = DEFAULT_ACTION_TIMEOUT_SECONDS,
        lease: timedelta | None = None,
        threads: int = DEFAULT_ACTION_THREADS,
        clock: Clock | None = None,
        rand: RandomSource = random.random,
        observer: FleetObserver | None = None,
    ) -> None:
        """``clock`` None: leases and retry times follow the database's clock
        (:mod:`pystator.stores.sql.db_clock`); a clock given stands in for it (tests)."""
        self.engine = engine
        self.machines = machines
        self.observer = observer or FleetObserver()
        self.retry = retry or default_action_retry()
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.lease = lease or lease_for(timeout)
        self.threads = threads  # run actions that have a timeout (PYSTATOR_ACTION_THREADS)
        self.clock = clock
        self.rand = rand
        self.on_dead: DeadAction | None = None  # what an action's last failure triggers
        # rows that are not a machine's action (webhook deliveries): run by name, no fallback
        self.handlers: dict[str, OutboxHandler] = {}
        # handler rows of one sweep that may run at once, by action (default 1: in id order)
        self.handler_threads: dict[str, int] = {}
        self._handler_pools: dict[str, ThreadPoolExecutor] = {}
        self.recorders: list[OutcomeRecorder] = []
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._runs = itertools.count()
        # one entry per run still going (a retry of a stuck action is another run):
        self._running: dict[int, tuple[int, float]] = {}  # run -> (outbox id, monotonic start)

    def run_ids(self, ids: Sequence[int]) -> int:
        """Run freshly committed actions by id (the worker's after-commit path)."""
        if not ids:
            return 0
        with translate_errors("action outbox"), self.engine.connect() as conn:
            rows = outbox_queries.load_outbox(conn, ids)
        return self.run(rows)

    def sweep(self, limit: int = DEFAULT_SWEEP_LIMIT, *, seconds: float = 0.0) -> int:
        """Claim and run stranded or retry-due actions (the relay's outbox sweep); returns how
        many succeeded.

        With ``seconds`` it claims page after page while each comes back full, for about that
        long: a backlog (a burst of webhook deliveries, the actions of a dead worker) drains at
        the rate the actions run, not one page per relay tick. A page ends the sweep when it is
        short: what failed waits for its retry time and what was not started stays leased, so
        neither is claimed again at once.
        """
        ends = time.monotonic() + seconds
        succeeded = 0
        while True:
            claimed = time.monotonic()
            try:
                with translate_errors("action outbox"), transaction(self.engine) as conn:
                    now = read_now(conn, self.clock)
                    rows = outbox_queries.claim_outbox(conn, now, limit, lease=self.lease)
            except StoreUnavailableError:
                raise
            except StoreError:  # one row refuses the claim: claim them one at a time
                rows = self._claim_each(limit)
            succeeded += self.run(rows, deadline=claimed + self.lease.total_seconds())
            if len(rows) < limit or time.monotonic() >= ends:
                return succeeded

    def run(self, rows: Sequence[OutboxRow], *, deadline: float | None = None) -> int:
        """Run ``rows`` in order; returns how many succeeded. The rows of a handler named in
        :attr:`handler_threads` (webhook deliveries) run beside each other instead, at most that
        many at once, on threads of their own; their outcomes are recorded with the rest.

        ``deadline`` is when the rows' lease ends, on this process's monotonic clock (default:
        a lease from now, for rows just committed): the lease was stamped with the database's
        clock, and only its length is counted here, so no two clocks are compared. An action
        whose timeout would outlast it is left to the sweep.
        """
        deadline = deadline or time.monotonic() + self.lease.total_seconds()
        done: list[int] = []
        failures: list[tuple[OutboxRow, Exception]] = []
        budget = self.timeout or 0.0
        sent: list[tuple[OutboxRow, Future[Exception | bool | None]]] = []
        for row in rows:
            if time.monotonic() + budget > deadline:
                break  # its lease would end while it may still run: the sweep takes it
            threads = self.handler_threads.get(row.action, 1) if row.action in self.handlers else 1
            if threads > 1:  # run beside the others of its kind (their pool bounds how many)
                pool = self._handler_pool(row.action, threads)
                sent.append((row, pool.submit(self._attempt_within, row, budget, deadline)))
                continue
            error = self._attempt(row)
            if error is None:
                done.append(row.id)
            else:
                failures.append((row, error))
        for row, future in sent:
            outcome = future.result()
            if outcome is None:
                done.append(row.id)
            elif isinstance(outcome, Exception):
                failures.append((row, outcome))
            # False: not started before its lease would end; the sweep takes it again
        self._record(done, failures)
        for failed_row, error in failures:
            last = failed_row.attempts + 1 >= self.max_attempts
            if self.on_dead is not None and last and failed_row.action not in self.handlers:
                self._after_dead(failed_row, error)
        return len(done)

    def _attempt(self, row: OutboxRow) -> Exception | None:
        """Run one row and tell the observer: the exception it raised, or None."""
        started = time.perf_counter()
        try:
            self._invoke(row)
        except Exception as exc:  # the action failed: recorded and retried by run()
            dead = row.attempts + 1 >= self.max_attempts
            self.observer.action_finished(row, exc, dead, time.perf_counter() - started)
            return exc
        self.observer.action_finished(row, None, False, time.perf_counter() - started)
        return None

    def _attempt_within(
        self, row: OutboxRow, budget: float, deadline: float
    ) -> Exception | bool | None:
        """:meth:`_attempt` on a handler thread; False, not run, when it starts too late for its
        lease (it waited behind others)."""
        if time.monotonic() + budget > deadline:
            return False
        return self._attempt(row)

    def _handler_pool(self, action: str, threads: int) -> ThreadPoolExecutor:
        with self._pool_lock:
            pool = self._handler_pools.get(action)
            if pool is None:
                pool = ThreadPoolExecutor(threads, thread_name_prefix="pystator-outbox-handler")
                self._handler_pools[action] = pool
            return pool

    def _after_dead(self, row: OutboxRow, exc: Exception) -> None:
        assert self.on_dead is not None
        try:
            self.on_dead(row, exc)
        except Exception as again:  # the action stays dead; an operator can replay it
            log.error("dead_action_fallback_failed", action_id=row.id, error=str(again))

    def hung_actions(self, older_than: float) -> list[int]:
        """Outbox ids of actions still running after ``older_than`` seconds (even abandoned
        after their timeout: their thread is stuck)."""
        now = time.monotonic()
        runs = list(self._running.values())
        return sorted({i for i, started in runs if now - started > older_than})

    def close(self) -> None:
        """Stop the action threads (those still running are left to finish on their own)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        with self._pool_lock:
            pools, self._handler_pools = list(self._handler_pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)

    def _invoke(self, row: OutboxRow) -> None:
        handler = self.handlers.get(row.action)
        if handler is not None:
            handler(row)
            return
        machine = self.machines.get(row.machine)
        registry = machine.action_registry
        registered = registry.resolve(row.action) if registry is not None else None
        if registered is None:
            raise ActionNotFoundError(f"action {row.action!r} is not registered")
        if self.timeout is None:
            _call(registered, row)
            return
        future = self._executor().submit(self._tracked, registered, row)
        try:
            future.result(timeout=self.timeout)
        except FutureTimeout as exc:
            raise FSMTimeoutError(
                f"action {row.action!r} ran longer than {self.timeout:g} s "
                "(PYSTATOR_ACTION_TIMEOUT_SECONDS); it is retried later"
            ) from exc

    def _tracked(self, registered: Any, row: OutboxRow) -> None:
        run = next(self._runs)
        self._running[run] = (row.id, time.monotonic())
        try:
            _call(registered, row)
        finally:
            self._running.pop(run, None)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="pystator-action")
            return self._pool

    def _claim_each(self, limit: int) -> list[OutboxRow]:
        with translate_errors("action outbox"), self.engine.connect() as conn:
            ids = outbox_queries.claimable_ids(conn, read_now(conn, self.clock), limit)
        rows: list[OutboxRow] = []
        for action_id in ids:
            try:
                with translate_errors("action outbox"), transaction(self.engine) as conn:
                    now = read_now(conn, self.clock)
                    rows += outbox_queries.claim_ids(conn, [action_id], now, lease=self.lease)
            except StoreUnavailableError:
                raise
            except StoreError as exc:
                log.error("action_claim_failed", action_id=action_id, error=str(exc))
        return rows

    def _record(self, done: list[int], failures: list[tuple[OutboxRow, Exception]]) -> None:
        try:
            with translate_errors("action outbox"), transaction(self.engine) as conn:
                self._write(conn, done, failures)
        except StoreUnavailableError:
            raise
        except StoreError:  # one row refuses its update: record them one at a time
            for action_id in done:
                self._record_one([action_id], [])
            for failure in failures:
                self._record_one([], [failure])

    def _record_one(self, done: list[int], failures: list[tuple[OutboxRow, Exception]]) -> None:
        try:
            with translate_errors("action outbox"), transaction(self.engine) as conn:
                self._write(conn, done, failures)
        except StoreError as exc:  # left pending: the sweep runs it again after its lease
            log.error(
                "action_outcome_not_recorded",
                ids=done or [f[0].id for f in failures],
                error=str(exc),
            )

    def _write(
        self, conn: Any, done: list[int], failures: list[tuple[OutboxRow, Exception]]
    ) -> None:
        # the database stamps completions itself; a retry time is computed from its clock
        outbox_queries.complete_outbox(conn, done, bind_now(conn, self.clock))
        for recorder in self.recorders:
            recorder(conn, done, failures)
        if not failures:
            return
        now = read_now(conn, self.clock)
        for row, exc in failures:
            attempt = row.attempts + 1
            errors = [*map(dict, row.errors), describe_error(exc, attempt=attempt, at=now)]
            outbox_queries.fail_outbox(
                conn, row.id, errors, now, retry_at=self._retry_at(attempt, now)
            )

    def _retry_at(self, attempt: int, now: datetime) -> datetime | None:
        if attempt >= self.max_attempts:
            return None
        return self.retry.next_time(attempt, now, self.rand)


def _call(registered: Any, row: OutboxRow) -> None:
    attributes = {
        "pystator.machine": row.machine,
        "pystator.entity_id": row.entity_id,
        "pystator.action_id": row.id,
        "pystator.attempt": row.attempts + 1,
    }
    with tracing.action_span(row.traceparent, row.action, attributes):
        result = registered.call(action_context(row), row.params)
        if inspect.isawaitable(result):
            _run_coroutine(result)


def _run_coroutine(awaitable: Any) -> None:
    async def _wait() -> None:
        await awaitable

    asyncio.run(_wait())


__all__ = [
    "OutboxHandler",
    "OutboxRunner",
    "OutcomeRecorder",
    "action_context",
    "default_action_retry",
    "lease_for",
]
