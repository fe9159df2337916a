"""OpenTelemetry: one submitted event is one trace, submit -> apply -> action, on a real worker
(drain threads on PostgreSQL, nudges through Redis) and the SDK's in-memory exporter.

A retry is the same event: its attempts are apply spans of the submission's trace (children of
the submit span). A timer joins the trace too: its firing's apply span is a child of the apply
span that armed it. Under ``opentelemetry-instrumentation-celery`` (an in-process Celery
worker) the apply span links to the task span that ran the nudge, and nothing is doubled.
Without OpenTelemetry installed nothing of it is imported.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from pystator import StateMachine
from pystator.config.settings import Settings
from pystator.fleet.composition import make_nudger
from pystator.fleet.embedded import DrainThreads
from pystator.fleet.producer import EventSpec
from pystator.fleet.runtime import Runtime
from pystator.registry.machines import MachineRegistry
from pystator.stores.sql.connections import fleet_engine
from tests.support.waiting import wait_until
from tests.support.worker import Hooks

MACHINE = "traced"
CONFIG: dict[str, Any] = {
    "meta": {"version": "1.0.0", "machine_name": MACHINE, "strict_mode": True},
    "states": [
        {"name": "new", "type": "initial"},
        {"name": "open", "type": "stable"},
        {"name": "closed", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "open", "source": "new", "dest": "open", "actions": ["record"]},
        {"trigger": "bump", "source": "open", "dest": "open", "guards": ["fragile"]},
        {"trigger": "expire", "source": "open", "dest": "closed", "after": "0.3s"},
    ],
}
WAIT_SECONDS = 30.0

_exporter = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_exporter))
    return _exporter


@pytest.fixture
def fleet(
    pg_migrated_url: str, redis_url: str, unique_name: str
) -> Iterator[tuple[Runtime, Hooks]]:
    hooks = Hooks()
    registry = MachineRegistry([StateMachine.from_dict(CONFIG)])
    registry.bind(*hooks.registries())
    settings = Settings(
        database_url=pg_migrated_url,
        broker_url=redis_url,
        queue=f"pystator-{unique_name}",
        retry_base_seconds=0.1,
        retry_max_seconds=0.1,
    )
    runtime = Runtime(
        settings=settings,
        engine=fleet_engine(pg_migrated_url),
        machines=registry,
        nudger=make_nudger(settings),
    )
    threads = DrainThreads(runtime, concurrency=2, fatal=False)
    threads.start()
    yield runtime, hooks
    threads.drain(10)


@pytest.mark.integration
def test_one_event_is_one_trace_from_submit_through_apply_to_its_action_and_timer(
    spans: InMemorySpanExporter, fleet: tuple[Runtime, Hooks]
) -> None:
    runtime, hooks = fleet
    spans.clear()
    with trace.get_tracer("test").start_as_current_span("client request") as client:
        runtime.producer.submit(EventSpec(machine=MACHINE, entity_id="a", trigger="open"))
    wait_for(lambda: len(named(spans, "pystator apply", "expire")) == 1, "the timer's apply")

    trace_id = client.get_span_context().trace_id
    (submit,) = named(spans, "pystator submit")
    (apply_open,) = named(spans, "pystator apply", "open")
    (action,) = named(spans, "pystator action record")
    (apply_expire,) = named(spans, "pystator apply", "expire")
    assert {s.context.trace_id for s in (submit, apply_open, action, apply_expire)} == {trace_id}
    assert parent_of(submit) == client.get_span_context().span_id
    assert parent_of(apply_open) == submit.context.span_id
    assert parent_of(action) == apply_open.context.span_id
    assert parent_of(apply_expire) == apply_open.context.span_id  # armed by that apply
    assert (
        apply_expire.attributes is not None
        and apply_expire.attributes["pystator.origin"] == "timer"
    )
    assert len(hooks.calls) == 1


@pytest.mark.integration
def test_a_retry_is_another_apply_span_of_the_same_trace(
    spans: InMemorySpanExporter, fleet: tuple[Runtime, Hooks]
) -> None:
    runtime, hooks = fleet
    runtime.producer.submit(EventSpec(machine=MACHINE, entity_id="b", trigger="open"))
    wait_for(lambda: len(named(spans, "pystator apply", "open")) >= 1, "b opened")
    spans.clear()
    hooks.flaky_failures = 1
    spec = EventSpec(machine=MACHINE, entity_id="b", trigger="bump", context={"flaky": True})
    runtime.producer.submit(spec)
    wait_for(lambda: len(named(spans, "pystator apply", "bump")) == 2, "the retry")

    (submit,) = named(spans, "pystator submit")
    first, second = sorted(named(spans, "pystator apply", "bump"), key=lambda s: s.start_time or 0)
    assert first.context.trace_id == second.context.trace_id == submit.context.trace_id
    assert parent_of(first) == parent_of(second) == submit.context.span_id
    assert first.status.status_code == StatusCode.ERROR
    assert second.status.status_code != StatusCode.ERROR
    assert [s.attributes["pystator.attempt"] for s in (first, second) if s.attributes] == [1, 2]


def test_without_opentelemetry_nothing_is_imported_and_nothing_changes() -> None:
    """A worker or producer without the extra (FastAPI itself needs OpenTelemetry's API, so
    the HTTP API always has it: there only the SDK makes spans record)."""
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import pystator.fleet.processor, pystator.fleet.producer, pystator.fleet.outbox\n"
        "from pystator.config import tracing\n"
        "assert not tracing.ENABLED\n"
        "assert tracing.start_apply('00-' + '1' * 32 + '-' + '2' * 16 + '-01', {}) is None\n"
        "assert tracing.current_traceparent() is None\n"
        "with tracing.submitting({}), tracing.action_span(None, 'x', {}):\n"
        "    pass\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry.')]\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def named(
    exporter: InMemorySpanExporter, name: str, trigger: str | None = None
) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.name == name
        and (trigger is None or (s.attributes or {}).get("pystator.trigger") == trigger)
    ]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def wait_for(condition: Callable[[], bool], what: str) -> None:
    wait_until(condition, timeout=WAIT_SECONDS, interval=0.02, message=what)
