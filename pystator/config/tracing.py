"""OpenTelemetry tracing, when it is installed (``pip install 'pystator[otel]'``).

The one module that imports OpenTelemetry, and only if it can: without it every function here
is a no-op and nothing else in pystator imports it (a worker or producer installed without the
extra). With the API installed but no SDK configured, spans are OpenTelemetry's non-recording
ones (a few microseconds each); FastAPI itself requires the API, so ``pystator[api]`` has it.

The spans of one event, in one trace:

- ``pystator submit`` (producer): around ``submit_event`` / ``POST /api/v1/events``, a child
  of the caller's current span (the HTTP server span when the API is instrumented). Its
  context is stored with the event (``worker_events.traceparent``, W3C trace context).
- ``pystator apply`` (consumer): the worker's apply of the event, a child of the stored context,
  whichever process applies it and however it got there (a nudge, the relay, a drain). A
  retry is the same event: its attempts are further apply spans of the same trace. When the
  worker runs under ``opentelemetry-instrumentation-celery`` the apply span *links* to the
  Celery task's span (which belongs to the nudge's own trace: one nudge message may announce
  many events); no span of Celery's is repeated.
- ``pystator action <name>``: each action the transition planned, a child of its apply span
  (the context is stored with the outbox row, so an action the relay's sweep runs later in
  another process still joins). Spans a handler opens nest under it.
- A timer armed by an applied event stores that apply span's context: its firing's apply span
  joins the original trace as a child of the apply that armed it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

try:  # the optional extra: everything below degrades to no-ops without it
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised by the no-extra test in a subprocess
    trace = None  # type: ignore[assignment]

#: True when OpenTelemetry's API is importable.
ENABLED = trace is not None
#: The carrier key of the W3C trace context.
TRACEPARENT = "traceparent"
#: Longest traceparent stored (version-traceid-spanid-flags is 55 characters).
TRACEPARENT_LENGTH = 100
_TRACER_NAME = "pystator"

Span = Any


def _tracer() -> Any:
    return trace.get_tracer(_TRACER_NAME)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span (None without one, or without OpenTelemetry)."""
    if not ENABLED:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    value = carrier.get(TRACEPARENT)
    return value if value and len(value) <= TRACEPARENT_LENGTH else None


def traceparent_of(span: Span | None) -> str | None:
    """The W3C traceparent naming ``span`` (what its children are stored with)."""
    if not ENABLED or span is None:
        return None
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        return current_traceparent()
    finally:
        otel_context.detach(token)


def _parent(traceparent: str | None) -> Any:
    if not traceparent:
        return None
    return propagate.extract({TRACEPARENT: traceparent})


@contextmanager
def submitting(attributes: Mapping[str, Any]) -> Iterator[None]:
    """The ``pystator submit`` span, current while the event is stored."""
    if not ENABLED:
        yield
        return
    with _tracer().start_as_current_span(
        "pystator submit", kind=SpanKind.PRODUCER, attributes=dict(attributes)
    ):
        yield


def start_apply(traceparent: str | None, attributes: Mapping[str, Any]) -> Span | None:
    """Start the ``pystator apply`` span of a stored event (not made current: a batch applies
    many events); links to the current span (a Celery task's) when there is one."""
    if not ENABLED:
        return None
    current = trace.get_current_span().get_span_context()
    links = [Link(current)] if current.is_valid else []
    return _tracer().start_span(
        "pystator apply",
        context=_parent(traceparent),
        kind=SpanKind.CONSUMER,
        attributes=dict(attributes),
        links=links,
    )


def end_span(span: Span | None, *, error: str | None = None, **attributes: Any) -> None:
    """End a span started here, with its outcome (``error`` marks it failed)."""
    if span is None:
        return
    for name, value in attributes.items():
        if value is not None:
            span.set_attribute(name, value)
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


@contextmanager
def action_span(
    traceparent: str | None, name: str, attributes: Mapping[str, Any]
) -> Iterator[None]:
    """The ``pystator action <name>`` span, current while the action runs (its handler's own
    spans nest under it); an exception marks it failed and goes on."""
    if not ENABLED:
        yield
        return
    with _tracer().start_as_current_span(
        f"pystator action {name}",
        context=_parent(traceparent),
        kind=SpanKind.INTERNAL,
        attributes=dict(attributes),
    ):
        yield


def instrument_app(app: Any) -> None:
    """Instrument a FastAPI app (server spans for every request) when
    ``opentelemetry-instrumentation-fastapi`` is installed.

    Imported here, when an app is built, not with this module: the instrumentation imports
    FastAPI (about a second of start-up), which a worker or a producer never needs."""
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        return
    FastAPIInstrumentor.instrument_app(app)


__all__ = [
    "ENABLED",
    "TRACEPARENT",
    "TRACEPARENT_LENGTH",
    "action_span",
    "current_traceparent",
    "end_span",
    "instrument_app",
    "start_apply",
    "submitting",
    "traceparent_of",
]
