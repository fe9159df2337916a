"""The Orchestrator: load → decide → persist → schedule → act, on every kind of store."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import (
    ActionRegistry,
    GuardRegistry,
    MetricsCollector,
    StateMachine,
    TransitionObserver,
)
from pystator.fsm_core.errors import ActionNotFoundError, StaleVersionError, StoreError
from pystator.fsm_core.records import ArmedTimer, EntityRecord, HistoryEntry
from pystator.orchestrator import ContextValidatorFn, Orchestrator
from pystator.stores import InMemoryStateStore, create_store
from pystator.stores.sql.engine import create_engine_from_url
from pystator.stores.sql.schema import transition_history

ORDER: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "orders"},
    "states": [
        {"name": "PENDING", "type": "initial"},
        {"name": "OPEN", "type": "stable", "on_enter": ["opened"]},
        {"name": "FILLED", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "ack", "source": "PENDING", "dest": "OPEN", "actions": ["acked"]},
        {"trigger": "fill", "source": "OPEN", "dest": "FILLED", "guards": ["is_full"]},
        {"trigger": "nudge", "source": "OPEN", "dest": "OPEN"},
    ],
}


def _no_sleep(_seconds: float) -> None:
    return None


def _registries(log: list[str]) -> tuple[GuardRegistry, ActionRegistry]:
    guards = GuardRegistry()
    guards.register("is_full", lambda ctx: ctx.get("fill_qty", 0) >= ctx.get("order_qty", 0))
    actions = ActionRegistry()
    actions.register("acked", lambda ctx: log.append("acked"))
    actions.register("opened", lambda ctx: log.append("opened"))
    return guards, actions


def _orchestrator(store: Any, log: list[str] | None = None, **kw: Any) -> Orchestrator:
    guards, actions = _registries([] if log is None else log)
    return Orchestrator(
        machine=StateMachine.from_dict(ORDER),
        state_store=store,
        guards=guards,
        actions=actions,
        sleep=_no_sleep,
        **kw,
    )


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryStateStore()
        return
    request.applymarker(pytest.mark.integration)
    fixture = {"sqlite": "sqlite_migrated_url", "postgresql": "pg_migrated_url"}.get(
        request.param, "redis_url"
    )
    instance = create_store(str(request.getfixturevalue(fixture)))
    try:
        yield instance
    finally:
        instance.close()


def test_first_event_creates_the_entity_then_versions_grow(store: Any) -> None:
    log: list[str] = []
    orchestrator = _orchestrator(store, log)
    result = orchestrator.process_event("o-1", "ack", {"order_qty": 10})
    assert result.success and result.target_state == "OPEN"
    assert result.metadata["entity_version"] == 1
    assert log == ["acked", "opened"]

    result = orchestrator.process_event("o-1", "fill", {"fill_qty": 10})
    assert result.success and result.target_state == "FILLED"
    record = store.load("orders", "o-1")
    assert (record.state, record.version) == ("FILLED", 2)
    assert record.context == {"order_qty": 10, "fill_qty": 10}
    history = store.history("orders", "o-1")
    assert [(h.version, h.source_state, h.target_state) for h in history] == [
        (1, None, "OPEN"),
        (2, "OPEN", "FILLED"),
    ]
    assert history[0].actions == ("acked", "opened")


def test_rejections_write_nothing(store: Any) -> None:
    orchestrator = _orchestrator(store)
    orchestrator.process_event("o-1", "ack", {"order_qty": 10})
    guarded = orchestrator.process_event("o-1", "fill", {"fill_qty": 3})
    assert not guarded.success and guarded.metadata["reason"] == "guard_rejected"
    unknown = orchestrator.process_event("o-1", "teleport")
    assert not unknown.success and unknown.metadata["reason"] == "undefined_trigger"
    assert store.load("orders", "o-1").version == 1
    assert len(store.history("orders", "o-1")) == 1


def test_missing_entity_without_initial_fallback() -> None:
    orchestrator = _orchestrator(InMemoryStateStore(), use_initial_state_when_missing=False)
    result = orchestrator.process_event("ghost", "ack")
    assert not result.success and result.metadata["reason"] == "entity_not_found"


def test_context_validator_runs_before_guards() -> None:
    seen: list[tuple[str, str, str, dict[str, Any]]] = []
    guard_calls: list[Mapping[str, Any]] = []

    def validator(
        entity_id: str, state: str, trigger: str, ctx: dict[str, Any]
    ) -> tuple[bool, list[str]]:
        seen.append((entity_id, state, trigger, dict(ctx)))
        return ("fill_qty" in ctx or trigger != "fill"), ["fill_qty is required"]

    typed: ContextValidatorFn = validator
    store = InMemoryStateStore()
    orchestrator = _orchestrator(store, context_validator=typed)
    orchestrator.machine.guard_registry.register(
        "is_full", lambda ctx: guard_calls.append(ctx) or True
    )
    orchestrator.process_event("o-1", "ack", {"order_qty": 5})
    result = orchestrator.process_event("o-1", "fill", {"note": "x"})
    assert not result.success
    assert result.metadata["reason"] == "context_validation"
    assert result.metadata["errors"] == ["fill_qty is required"]
    assert result.error is not None and result.error.errors == ("fill_qty is required",)  # type: ignore[attr-defined]
    assert guard_calls == []
    assert seen[-1] == ("o-1", "OPEN", "fill", {"order_qty": 5, "note": "x"})
    assert store.load("orders", "o-1").version == 1


class SneakyStore(InMemoryStateStore):
    """Lets a competing writer commit between this orchestrator's load and its save."""

    def __init__(self, conflicts: int) -> None:
        super().__init__()
        self.conflicts = conflicts

    def save(
        self, record: EntityRecord, *, expected_version: int, history: HistoryEntry | None = None
    ) -> None:
        if self.conflicts > 0 and expected_version > 0:
            self.conflicts -= 1
            current = self.load(record.machine, record.entity_id)
            assert current is not None
            bumped = dataclasses.replace(
                current,
                version=current.version + 1,
                context={**current.context, "competitor": self.conflicts},
            )
            super().save(bumped, expected_version=current.version)
        super().save(record, expected_version=expected_version, history=history)


def test_conflict_reloads_and_recomputes() -> None:
    store = SneakyStore(conflicts=0)
    orchestrator = _orchestrator(store)
    orchestrator.process_event("o-1", "ack", {"order_qty": 5})
    store.conflicts = 2
    result = orchestrator.process_event("o-1", "fill", {"fill_qty": 5})
    assert result.success and result.metadata["attempts"] == 3
    record = store.load("orders", "o-1")
    assert (record.state, record.version) == ("FILLED", 4)
    assert record.context["competitor"] == 0  # recomputed from the competitor's write


def test_conflicts_are_bounded_and_actions_never_run() -> None:
    log: list[str] = []
    store = SneakyStore(conflicts=10_000)
    orchestrator = _orchestrator(store, log, max_attempts=4)
    orchestrator.process_event("o-1", "ack", {"order_qty": 5})
    log.clear()
    with pytest.raises(StaleVersionError) as info:
        orchestrator.process_event("o-1", "nudge")
    assert isinstance(info.value.__cause__, StaleVersionError)
    assert "4 attempts" in str(info.value)
    assert log == []


def test_actions_run_after_commit(store: Any) -> None:
    seen_versions: list[int] = []
    orchestrator = _orchestrator(store)
    orchestrator.machine.action_registry.register(
        "acked", lambda ctx: seen_versions.append(store.load("orders", "o-1").version)
    )
    orchestrator.process_event("o-1", "ack")
    assert seen_versions == [1]


def test_unregistered_action_fails_before_anything_is_written() -> None:
    store = InMemoryStateStore()
    orchestrator = _orchestrator(store)
    orchestrator.machine.action_registry.unregister("opened")
    with pytest.raises(ActionNotFoundError):
        orchestrator.process_event("o-1", "ack")
    assert store.load("orders", "o-1") is None


@pytest.mark.integration
@pytest.mark.parametrize("fixture", ["sqlite_migrated_url", "pg_migrated_url"])
def test_sql_state_and_history_commit_together(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue(fixture))
    store = create_store(url)
    engine = create_engine_from_url(url)
    try:
        orchestrator = _orchestrator(store)
        orchestrator.process_event("o-1", "ack", {"order_qty": 5})
        with engine.begin() as conn:  # a stray history row for version 2 makes the write fail
            conn.execute(
                sa.insert(transition_history).values(
                    machine="orders",
                    entity_id="o-1",
                    version=2,
                    target_state="X",
                    origin="direct",
                    actions=[],
                    created_at=sa.func.now(),
                )
            )
        with pytest.raises(StoreError):
            orchestrator.process_event("o-1", "nudge")
        assert store.load("orders", "o-1").version == 1  # the state write rolled back with it
    finally:
        engine.dispose()
        store.close()


def test_hooks_fire_for_orchestrated_transitions() -> None:
    metrics = MetricsCollector()
    observer = TransitionObserver()
    observer.add_hook(metrics)
    orchestrator = _orchestrator(InMemoryStateStore(), observer=observer)
    orchestrator.process_event("o-1", "ack")
    orchestrator.process_event("o-1", "teleport")
    summary = metrics.get_summary()
    assert summary["total_transitions"] == 2
    assert summary["success_rate"] == 0.5


@pytest.mark.integration
@pytest.mark.parametrize("fixture", ["sqlite_migrated_url", "pg_migrated_url", "redis_url"])
def test_async_orchestrator_with_async_store(fixture: str, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue(fixture))

    async def scenario() -> tuple[Any, list[str]]:
        store = create_store(url, is_async=True)
        log: list[str] = []
        orchestrator = _orchestrator(store, log)

        async def is_full(ctx: Mapping[str, Any]) -> bool:
            await asyncio.sleep(0)
            return bool(ctx["fill_qty"] >= ctx["order_qty"])

        orchestrator.machine.guard_registry.register("is_full", is_full)
        try:
            await orchestrator.async_process_event("o-1", "ack", {"order_qty": 2})
            result = await orchestrator.async_process_event("o-1", "fill", {"fill_qty": 2})
            assert result.success
            record = await orchestrator.async_get_record("o-1")
            return record, log
        finally:
            await orchestrator.close()
            await store.close()

    record, log = asyncio.run(scenario())
    assert (record.state, record.version) == ("FILLED", 2)
    assert log == ["acked", "opened"]


def test_async_orchestrator_accepts_a_sync_store() -> None:
    store = InMemoryStateStore()
    orchestrator = _orchestrator(store)
    result = asyncio.run(orchestrator.async_process_event("o-1", "ack"))
    assert result.success and store.load("orders", "o-1").state == "OPEN"


def test_sync_call_with_async_store_is_refused(sqlite_migrated_url: str) -> None:
    store = create_store(sqlite_migrated_url, is_async=True)
    orchestrator = _orchestrator(store)
    with pytest.raises(TypeError, match="async_process_event"):
        orchestrator.process_event("o-1", "ack")
    asyncio.run(store.close())


class RecordingScheduler:
    """A scheduler fake: remembers what it was told, fires timers on demand."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.fire: Any = None
        self.closed = False

    def start(self, fire: Any) -> None:
        self.fire = fire

    def arm(self, timers: Sequence[ArmedTimer]) -> None:
        self.calls.append(("arm", tuple(t.timer_id for t in timers)))
        self.armed = list(timers)

    def cancel(self, timers: Sequence[ArmedTimer]) -> None:
        self.calls.append(("cancel", tuple(t.timer_id for t in timers)))

    async def aclose(self) -> None:
        self.closed = True


DELAYED: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "delayed"},
    "states": [
        {"name": "IDLE", "type": "initial"},
        {"name": "WAITING", "type": "stable"},
        {"name": "EXPIRED", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "start", "source": "IDLE", "dest": "WAITING"},
        {"trigger": "expire", "source": "WAITING", "dest": "EXPIRED", "after": "2s"},
        {"trigger": "stop", "source": "WAITING", "dest": "IDLE"},
    ],
}


def test_timers_are_armed_after_commit_and_fire_back() -> None:
    scheduler = RecordingScheduler()
    store = InMemoryStateStore()
    orchestrator = Orchestrator(
        machine=StateMachine.from_dict(DELAYED), state_store=store, scheduler=scheduler
    )
    orchestrator.process_event("d-1", "start")
    assert [kind for kind, _ in scheduler.calls] == ["arm"]
    (timer,) = scheduler.armed
    assert timer.entry == 1 and timer.state == "WAITING"
    scheduler.fire(timer)
    record = store.load("delayed", "d-1")
    assert (record.state, record.version) == ("EXPIRED", 2)
    assert store.history("delayed", "d-1")[-1].origin == "timer"


def test_leaving_a_state_cancels_its_timer_and_a_stale_fire_is_dropped() -> None:
    scheduler = RecordingScheduler()
    store = InMemoryStateStore()
    with Orchestrator(
        machine=StateMachine.from_dict(DELAYED), state_store=store, scheduler=scheduler
    ) as orchestrator:
        orchestrator.process_event("d-1", "start")
        (first,) = scheduler.armed
        orchestrator.process_event("d-1", "stop")
        assert scheduler.calls[-1] == ("cancel", (first.timer_id,))
        orchestrator.process_event("d-1", "start")  # re-entering WAITING: a new entry
        scheduler.fire(first)  # the old timer arrives late
        assert store.load("delayed", "d-1").state == "WAITING"
    assert scheduler.closed


def test_close_is_awaitable_and_idempotent() -> None:
    scheduler = RecordingScheduler()
    orchestrator = _orchestrator(InMemoryStateStore(), scheduler=scheduler)

    async def main() -> None:
        await orchestrator.close()
        await orchestrator.close()

    asyncio.run(main())
    assert scheduler.closed
