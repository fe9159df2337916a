"""The Orchestrator's CeleryScheduler with a real Celery worker on a real RabbitMQ broker."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from celery.worker import state as worker_state

from pystator import StateMachine
from pystator.fsm_core.clock import utc_now
from pystator.fsm_core.errors import SchedulerError
from pystator.fsm_core.records import ArmedTimer
from pystator.orchestrator import Orchestrator
from pystator.schedulers.celery_scheduler import FIRE_TASK, CeleryScheduler
from pystator.schedulers.payload import encode_timer
from pystator.stores import InMemoryStateStore
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ENTITIES = 40
#: How long a stopping test worker may take: kombu's event loop polls up to 10 s at a time and
#: only then sees the stop (celery's own default, 10 s, is that poll exactly: it races it).
WORKER_STOP_SECONDS = 30.0
DELAYED: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": "delayed", "strict_mode": True},
    "states": [
        {"name": "IDLE", "type": "initial"},
        {"name": "WAITING", "type": "stable"},
        {"name": "EXPIRED", "type": "terminal"},
        {"name": "DONE", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "start", "source": "IDLE", "dest": "WAITING"},
        {"trigger": "expire", "source": "WAITING", "dest": "EXPIRED", "after": "1500ms"},
        {"trigger": "finish", "source": "WAITING", "dest": "DONE"},
    ],
}


def drained(app: Celery, queue: str) -> bool:
    """Nothing left for the worker: no message ready in ``queue``, none reserved (held for its
    ETA) and none running. A duplicate or stale delivery would have run by then."""
    with app.connection_for_read() as conn:
        ready = conn.default_channel.queue_declare(queue, passive=True).message_count
    return ready == 0 and not worker_state.reserved_requests and not worker_state.active_requests


@pytest.fixture
def app(amqp_url: str, unique_name: str) -> Iterator[Celery]:
    app = Celery(f"sched-{unique_name}", broker=amqp_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=unique_name,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        worker_hijack_root_logger=False,
    )
    yield app
    app.close()


def test_timers_fire_through_a_real_worker_in_hops_and_only_if_fresh(
    app: Celery, unique_name: str
) -> None:
    scheduler = CeleryScheduler(app, name=unique_name, queue=unique_name, horizon_seconds=0.4)
    store = InMemoryStateStore()
    orchestrator = Orchestrator(
        machine=StateMachine.from_dict(DELAYED), state_store=store, scheduler=scheduler
    )
    outcomes: list[str] = []

    def collect(sender: Any = None, retval: Any = None, **_kwargs: Any) -> None:
        if getattr(sender, "name", None) == FIRE_TASK:
            outcomes.append(str(retval))

    task_postrun.connect(collect, weak=False)
    with start_worker(
        app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        shutdown_timeout=WORKER_STOP_SECONDS,
    ):
        started = time.monotonic()
        for n in range(ENTITIES):
            orchestrator.process_event(f"d{n}", "start")
            if n % 2 == 0:  # half leave at once, long before their 1.5s timer is due
                orchestrator.process_event(f"d{n}", "finish")

        def settled() -> bool:
            states = [store.load("delayed", f"d{n}").state for n in range(ENTITIES)]
            return states.count("EXPIRED") == ENTITIES // 2

        wait_until(settled, timeout=30, interval=0.05, message="every remaining timer fired")
        elapsed = time.monotonic() - started
        wait_until(
            lambda: outcomes.count("fired") >= ENTITIES and drained(app, unique_name),
            timeout=30,
            message="every timer's last delivery run and nothing left to deliver",
        )
    task_postrun.disconnect(collect)
    scheduler.close()

    assert elapsed >= 1.4  # the 1.5s delay crossed a 0.4s horizon in hops, not early
    assert outcomes.count("hopped") >= 3 * ENTITIES  # 1.5s / 0.4s: at least 3 hops each
    assert outcomes.count("fired") == ENTITIES  # the finished half fires too, and is dropped
    for n in range(ENTITIES):
        history = store.history("delayed", f"d{n}")
        expected = ["WAITING", "DONE"] if n % 2 == 0 else ["WAITING", "EXPIRED"]
        assert [h.target_state for h in history] == expected
        if n % 2:
            assert history[-1].origin == "timer"


def test_a_redelivered_timer_is_dropped_as_stale(app: Celery, unique_name: str) -> None:
    scheduler = CeleryScheduler(app, name=unique_name, queue=unique_name)
    armed: list[ArmedTimer] = []
    scheduler.arm = armed.extend  # type: ignore[method-assign]  # capture instead of publishing
    store = InMemoryStateStore()
    orchestrator = Orchestrator(
        machine=StateMachine.from_dict(DELAYED), state_store=store, scheduler=scheduler
    )
    orchestrator.process_event("d", "start")
    (timer,) = armed
    due_now = dataclasses.replace(timer, due_at=utc_now() - timedelta(seconds=1))
    deliveries: list[str] = []

    def collect(sender: Any = None, retval: Any = None, **_kwargs: Any) -> None:
        if getattr(sender, "name", None) == FIRE_TASK:
            deliveries.append(str(retval))

    task_postrun.connect(collect, weak=False)
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        shutdown_timeout=WORKER_STOP_SECONDS,
    ):
        for _ in range(2):  # the same timer delivered twice
            app.send_task(FIRE_TASK, args=[unique_name, encode_timer(due_now), 60.0])
        wait_until(
            lambda: len(deliveries) == 2 and drained(app, unique_name),
            timeout=30,
            message="both deliveries run and acknowledged",
        )
    task_postrun.disconnect(collect)
    assert [h.target_state for h in store.history("delayed", "d")] == ["WAITING", "EXPIRED"]
    scheduler.close()


def test_two_orchestrators_cannot_share_a_scheduler_name(app: Celery, unique_name: str) -> None:
    first = CeleryScheduler(app, name=unique_name)
    second = CeleryScheduler(app, name=unique_name)
    first.start(lambda timer: None)
    with pytest.raises(SchedulerError, match="own name"):
        second.start(lambda timer: None)
    first.close()
    second.start(lambda timer: None)  # the name is free again
    second.close()
