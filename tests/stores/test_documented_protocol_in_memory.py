"""The documented store protocol (get_state / set_state / get_context, and the async forms): on
our stores, and a user's store implementing only that protocol driving the Orchestrator end to
end. Also the documented ``scheduler.schedule``. (SQL and Redis stores:
tests/stores/test_documented_protocol_sql_redis.py.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from pystator import (
    ActionRegistry,
    AsyncStateStore,
    GuardRegistry,
    InMemoryStateStore,
    Orchestrator,
    StateMachine,
    StateStore,
    VersionedStateStore,
)
from pystator.scheduler import AsyncioScheduler
from pystator.stores import DocumentedStoreAdapter, as_versioned_store
from tests.support.virtual_time import advance, run_skipping_time

CONFIG = {
    "meta": {"machine_name": "orders"},
    "states": [
        {"name": "PENDING", "type": "initial"},
        {"name": "OPEN", "type": "stable"},
        {"name": "FILLED", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "ack", "source": "PENDING", "dest": "OPEN", "actions": [{"set": {"seen": 1}}]},
        {
            "trigger": "fill",
            "source": "OPEN",
            "dest": "FILLED",
            "guards": ["full"],
            "actions": ["notify"],
        },
        {"trigger": "start_timer", "source": "PENDING", "dest": "OPEN"},
    ],
}


class DictStore:
    """A user's store written for the docs: only the three documented methods, no versions."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.contexts: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []

    def get_state(self, entity_id: str) -> str | None:
        return self.states.get(entity_id)

    def set_state(
        self, entity_id: str, state: str, *, metadata: Mapping[str, Any] | None = None
    ) -> None:
        self.states[entity_id] = state
        self.contexts[entity_id] = dict(metadata or {})
        self.writes.append((entity_id, state))

    def get_context(self, entity_id: str) -> dict[str, Any]:
        return dict(self.contexts.get(entity_id, {}))


class AsyncDictStore:
    """The documented async protocol only."""

    def __init__(self) -> None:
        self.inner = DictStore()

    async def aget_state(self, entity_id: str) -> str | None:
        return self.inner.get_state(entity_id)

    async def aset_state(
        self, entity_id: str, state: str, *, metadata: Mapping[str, Any] | None = None
    ) -> None:
        self.inner.set_state(entity_id, state, metadata=metadata)

    async def aget_context(self, entity_id: str) -> dict[str, Any]:
        return self.inner.get_context(entity_id)


def _parts() -> tuple[StateMachine, GuardRegistry, ActionRegistry, list[Any]]:
    guards = GuardRegistry()
    guards.register("full", lambda ctx: ctx.get("qty", 0) >= 10)
    notified: list[Any] = []
    actions = ActionRegistry()
    actions.register("notify", lambda ctx: notified.append((ctx["_entity_id"], ctx.get("qty"))))
    return StateMachine.from_dict(CONFIG), guards, actions, notified


def test_user_store_with_only_the_documented_protocol_drives_the_orchestrator() -> None:
    store = DictStore()
    assert isinstance(store, StateStore) and not isinstance(store, VersionedStateStore)
    machine, guards, actions, notified = _parts()
    orchestrator = Orchestrator(machine=machine, state_store=store, guards=guards, actions=actions)
    assert orchestrator.process_event("o-1", "ack", {"qty": 3}).success
    assert store.get_state("o-1") == "OPEN"
    assert store.get_context("o-1") == {"qty": 3, "seen": 1}  # context persisted as metadata
    rejected = orchestrator.process_event("o-1", "fill", {})
    assert not rejected.success and rejected.metadata["reason"] == "guard_rejected"
    assert store.get_state("o-1") == "OPEN" and store.writes == [("o-1", "OPEN")]
    done = orchestrator.process_event("o-1", "fill", {"qty": 12})
    assert done.success and done.target_state == "FILLED"
    assert store.get_state("o-1") == "FILLED" and store.get_context("o-1")["qty"] == 12
    assert notified == [("o-1", 12)]  # actions ran after the write, with the entity id
    # the state the store holds is where the next event starts, even if written by someone else
    store.set_state("o-2", "OPEN", metadata={"qty": 50})
    assert orchestrator.process_event("o-2", "fill", {}).target_state == "FILLED"
    assert notified[-1] == ("o-2", 50)


def test_user_store_without_get_context_still_works() -> None:
    class StateOnly:
        def __init__(self) -> None:
            self.states: dict[str, str] = {}

        def get_state(self, entity_id: str) -> str | None:
            return self.states.get(entity_id)

        def set_state(
            self, entity_id: str, state: str, *, metadata: Mapping[str, Any] | None = None
        ) -> None:
            self.states[entity_id] = state

    store = StateOnly()
    machine, guards, actions, _ = _parts()
    orchestrator = Orchestrator(machine, store, guards, actions)
    assert orchestrator.process_event("o-3", "ack").success and store.states == {"o-3": "OPEN"}


def test_async_user_store_drives_async_process_event() -> None:
    store = AsyncDictStore()
    assert isinstance(store, AsyncStateStore)
    machine, guards, actions, notified = _parts()
    orchestrator = Orchestrator(machine=machine, store=store, guards=guards, actions=actions)

    async def run() -> None:
        assert (await orchestrator.async_process_event("o-4", "ack", {})).success
        assert (await orchestrator.async_process_event("o-4", "fill", {"qty": 10})).success

    asyncio.run(run())
    assert store.inner.states == {"o-4": "FILLED"} and notified == [("o-4", 10)]
    with pytest.raises(TypeError, match="async state store"):
        orchestrator.process_event("o-4", "ack", {})


def test_orchestrator_refuses_what_is_not_a_store() -> None:
    machine, *_ = _parts()
    with pytest.raises(TypeError, match="needs get_state"):
        Orchestrator(machine, object())
    with pytest.raises(TypeError, match="exactly one"):
        Orchestrator(machine)
    with pytest.raises(TypeError, match="exactly one"):
        Orchestrator(machine, InMemoryStateStore(), store=InMemoryStateStore())


def test_our_memory_store_speaks_the_documented_protocol() -> None:
    store = InMemoryStateStore()
    assert isinstance(store, StateStore) and isinstance(store, VersionedStateStore)
    with pytest.raises(ValueError, match="machine_name"):
        store.get_state("x")  # it holds every machine's entities: which one?
    assert store.get_state("x", machine="orders") is None
    assert store.get_context("x", machine="orders") == {}
    machine, guards, actions, _ = _parts()
    orchestrator = Orchestrator(machine, store, guards, actions)
    assert as_versioned_store(store, "orders") is store and store.machine_name == "orders"
    orchestrator.process_event("o-5", "ack", {"qty": 1})
    assert store.get_state("o-5") == "OPEN"
    assert store.get_context("o-5") == {"qty": 1, "seen": 1}
    store.set_state("o-5", "PENDING", metadata={"qty": 20})  # a versioned write underneath
    record = store.load("orders", "o-5")
    assert record is not None and record.version == 2 and record.context == {"qty": 20}
    store.set_state("o-6", "OPEN")
    assert store.get_context("o-6") == {}
    assert orchestrator.process_event("o-6", "fill", {"qty": 10}).success
    assert asyncio.run(store.aget_state("o-6")) == "FILLED"
    asyncio.run(store.aset_state("o-7", "OPEN", metadata={"a": 1}))
    assert asyncio.run(store.aget_context("o-7")) == {"a": 1}


def test_set_state_keeps_concurrent_writers_apart() -> None:
    store = InMemoryStateStore()
    store.machine_name = "orders"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                store.set_state("hot", f"S{n}", metadata={"i": i})
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record = store.load("orders", "hot")
    assert errors == [] and record is not None
    assert record.version == 200 and len(store.history("orders", "hot")) == 0


def test_adapter_detects_a_writer_it_did_not_see() -> None:
    store = DictStore()
    adapter = DocumentedStoreAdapter(store, "orders")
    store.set_state("e", "OPEN")
    first = adapter.load("orders", "e")
    assert first is not None and first.state == "OPEN" and first.version == 1


def test_scheduler_schedule_fires_into_the_orchestrator() -> None:
    machine, guards, actions, _ = _parts()
    store = InMemoryStateStore()
    scheduler = AsyncioScheduler()
    orchestrator = Orchestrator(machine, store, guards, actions, scheduler=scheduler)

    async def run() -> None:
        await orchestrator.async_process_event("o-8", "ack", {})
        timer_id = scheduler.schedule("o-8", "fill", 10)
        assert isinstance(timer_id, str)
        scheduler.schedule("o-8", "fill", 10, key="never")
        scheduler.unschedule("o-8", "never")
        await advance(1.0)  # past both 10 ms timers' due time: the scheduled one has fired
        await orchestrator.close()

    store.set_state("o-8", "OPEN", metadata={"qty": 10}, machine="orders")
    run_skipping_time(run())
    assert store.get_state("o-8") == "FILLED"
    history = store.history("orders", "o-8")
    assert [h.origin for h in history][-1] == "timer"
    assert sum(h.target_state == "FILLED" for h in history) == 1  # the unscheduled one never fired
    with pytest.raises(ValueError):
        scheduler.schedule("o-8", "fill", -1)
