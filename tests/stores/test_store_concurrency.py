"""Eight workers (threads, then processes) race 500 events each on ONE entity via the Orchestrator.

Optimistic locking must make every successful transition count exactly once: the entity's final
version equals the number of successes, and its history holds versions 1..N with no gap or
duplicate, each one continuing from the state the previous one produced.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pystator import StateMachine
from pystator.fsm_core.errors import StaleVersionError
from pystator.orchestrator import Orchestrator
from pystator.stores import create_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKERS = 8
EVENTS_PER_WORKER = 500
ENTITY = "the-one"
# Two states and one trigger that always succeeds: A -tick-> B -tick-> A ...
CYCLE: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "cycle"},
    "states": [{"name": "A", "type": "initial"}, {"name": "B", "type": "stable"}],
    "transitions": [
        {"trigger": "tick", "source": "A", "dest": "B"},
        {"trigger": "tick", "source": "B", "dest": "A"},
    ],
}


def send_events(url: str, worker: int, events: int, start: Any = None) -> tuple[int, int]:
    """One worker: its own store and orchestrator; returns (successes, conflicts given up)."""
    store = create_store(url)
    orchestrator = Orchestrator(machine=StateMachine.from_dict(CYCLE), state_store=store)
    if start is not None:
        start.wait()
    successes = conflicts = 0
    try:
        for n in range(events):
            try:
                result = orchestrator.process_event(ENTITY, "tick", {"worker": worker, "n": n})
            except StaleVersionError:
                conflicts += 1
                continue
            assert result.success, result
            successes += 1
    finally:
        orchestrator.close_sync()
        store.close()
    return successes, conflicts


def _with_threads(url: str) -> list[tuple[int, int]]:
    barrier = threading.Barrier(WORKERS)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [
            pool.submit(send_events, url, w, EVENTS_PER_WORKER, barrier) for w in range(WORKERS)
        ]
        return [f.result() for f in futures]


def _with_processes(url: str) -> list[tuple[int, int]]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(WORKERS)
        with context.Pool(WORKERS) as pool:
            jobs = [
                pool.apply_async(send_events, (url, w, EVENTS_PER_WORKER, barrier))
                for w in range(WORKERS)
            ]
            return [job.get() for job in jobs]


RUNNERS: dict[str, Callable[[str], list[tuple[int, int]]]] = {
    "threads": _with_threads,
    "processes": _with_processes,
}


@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize("backend", ["postgresql", "redis"])
def test_final_version_counts_every_success_once(
    backend: str, runner: str, request: pytest.FixtureRequest
) -> None:
    url = str(
        request.getfixturevalue("pg_migrated_url" if backend == "postgresql" else "redis_url")
    )
    outcomes = RUNNERS[runner](url)

    successes = sum(s for s, _ in outcomes)
    assert sum(s + c for s, c in outcomes) == WORKERS * EVENTS_PER_WORKER
    assert successes > 0
    store = create_store(url)
    try:
        record = store.load("cycle", ENTITY)
        history = store.history("cycle", ENTITY)
    finally:
        store.close()
    assert record is not None
    assert record.version == successes
    assert [h.version for h in history] == list(range(1, successes + 1))
    expected_source = None
    for entry in history:  # each write continues from the state the previous one produced
        assert entry.source_state == expected_source
        assert entry.target_state == ("B" if entry.version % 2 else "A")
        expected_source = entry.target_state
    assert record.state == expected_source
