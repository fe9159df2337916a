"""Lifecycle hooks around ``process``: logging, metrics, tracing — attached, never forked.

A :class:`TransitionObserver` holds hooks and notifies them. ``StateMachine(…, hooks=[…])``,
``machine.add_hook(hook)``, ``Orchestrator(…, hooks=[…])`` or ``machine.attach_observer(observer)``
make a machine report every ``process`` to them. A hook that raises is logged loudly on the
``pystator.hooks`` logger (with the traceback) and never breaks processing. Hooks may implement
any subset of the four :class:`TransitionHook` methods.

The entity an evaluation is for reaches ``on_before_process`` through :func:`entity_scope` (the
Orchestrator and ``EntitySession`` set it) or the context's ``_entity_id`` key; it is None for a
bare ``machine.process`` call.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pystator.fsm_core.context import ENTITY_ID_KEY
from pystator.fsm_core.results import TransitionResult

HOOK_LOGGER = logging.getLogger("pystator.hooks")
DEFAULT_METRICS_WINDOW = 10_000  # most recent durations kept for the percentiles
DEFAULT_TRANSITIONS_LOGGER = "pystator.transitions"
_HOOK_METHODS = (
    "on_before_process",
    "on_transition_start",
    "on_transition_complete",
    "on_transition_error",
)
#: Set on an exception once the hooks were told about it (so an outer layer does not repeat it).
NOTIFIED_ATTRIBUTE = "_pystator_hooks_notified"

_CURRENT_ENTITY: ContextVar[str | None] = ContextVar("pystator_current_entity", default=None)


@contextlib.contextmanager
def entity_scope(entity_id: str | None) -> Iterator[None]:
    """Within the block, hooks' ``on_before_process`` receive ``entity_id``."""
    token = _CURRENT_ENTITY.set(entity_id)
    try:
        yield
    finally:
        _CURRENT_ENTITY.reset(token)


def enter_entity(entity_id: str | None) -> Token[str | None]:
    """:func:`entity_scope` without a context manager (cheaper on hot paths); pair it with
    :func:`leave_entity` in a ``finally``."""
    return _CURRENT_ENTITY.set(entity_id)


def leave_entity(token: Token[str | None]) -> None:
    """End what :func:`enter_entity` started."""
    _CURRENT_ENTITY.reset(token)


def current_entity(context: Mapping[str, Any] | None = None) -> str | None:
    """The entity being processed: the innermost :func:`entity_scope`, else ``_entity_id``."""
    entity = _CURRENT_ENTITY.get()
    if entity is None and context:
        found = context.get(ENTITY_ID_KEY)
        entity = None if found is None else str(found)
    return entity


@runtime_checkable
class TransitionHook(Protocol):
    """The four lifecycle callbacks (the documented protocol); a hook may implement a subset."""

    def on_before_process(
        self,
        entity_id: str | None,
        current_state: str,
        trigger: str,
        context: Mapping[str, Any],
    ) -> None:
        """Before anything is evaluated for the event (``entity_id`` None outside an entity)."""

    def on_transition_start(
        self, current_state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        """When the engine starts evaluating the transition."""

    def on_transition_complete(
        self, result: TransitionResult, duration_ms: float, context: Mapping[str, Any]
    ) -> None:
        """With the result (success or business rejection) and the time it took."""

    def on_transition_error(
        self,
        error: BaseException,
        current_state: str,
        trigger: str,
        context: Mapping[str, Any],
    ) -> None:
        """When processing raised (undefined state, a guard that raised, a failing store …)."""


class TransitionObserver:
    """Holds hooks and fans notifications out to them, isolating hook failures."""

    def __init__(self, hooks: tuple[object, ...] | list[object] = ()) -> None:
        self._hooks: list[object] = []
        self._bound: dict[str, list[Callable[..., Any]]] = {m: [] for m in _HOOK_METHODS}
        for hook in hooks:
            self.add_hook(hook)

    @property
    def hooks(self) -> tuple[object, ...]:
        """The attached hooks, in the order they were added."""
        return tuple(self._hooks)

    @property
    def has_hooks(self) -> bool:
        """True when at least one hook is attached (callers can skip timing otherwise)."""
        return bool(self._hooks)

    def add_hook(self, hook: object) -> None:
        """Attach ``hook``; its missing callbacks are simply not called."""
        if not any(callable(getattr(hook, m, None)) for m in _HOOK_METHODS):
            raise TypeError(f"{type(hook).__name__} implements none of {', '.join(_HOOK_METHODS)}")
        self._hooks.append(hook)
        self._rebind()

    def remove_hook(self, hook: object) -> None:
        """Detach ``hook`` (no error if it is not attached)."""
        self._hooks = [h for h in self._hooks if h is not hook]
        self._rebind()

    def _rebind(self) -> None:
        self._bound = {
            m: [fn for h in self._hooks if callable(fn := getattr(h, m, None))]
            for m in _HOOK_METHODS
        }

    def notify_before_process(
        self,
        entity_id: str | None,
        state: str,
        trigger: str,
        context: Mapping[str, Any],
    ) -> None:
        """Tell every hook an event is about to be processed."""
        self._fire("on_before_process", entity_id, state, trigger, context)

    def notify_start(self, state: str, trigger: str, context: Mapping[str, Any]) -> None:
        """Tell every hook the transition evaluation starts."""
        self._fire("on_transition_start", state, trigger, context)

    def notify_complete(
        self,
        result: TransitionResult,
        duration_ms: float,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Tell every hook the event was processed (successfully or rejected)."""
        self._fire("on_transition_complete", result, duration_ms, context or {})

    def notify_error(
        self,
        error: BaseException,
        state: str,
        trigger: str,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Tell every hook processing raised ``error`` (once per exception object)."""
        if getattr(error, NOTIFIED_ATTRIBUTE, False):
            return
        with contextlib.suppress(AttributeError, TypeError):
            setattr(error, NOTIFIED_ATTRIBUTE, True)
        self._fire("on_transition_error", error, state, trigger, context or {})

    def _fire(self, method: str, *args: Any) -> None:
        for fn in self._bound[method]:
            try:
                fn(*args)
            except Exception:  # isolated on purpose: a broken hook must not break processing
                HOOK_LOGGER.error(
                    "hook %s.%s raised; processing continues",
                    _owner_name(fn),
                    method,
                    exc_info=True,
                )


def _owner_name(fn: Callable[..., Any]) -> str:
    owner = getattr(fn, "__self__", None)
    return type(owner).__name__ if owner is not None else getattr(fn, "__qualname__", repr(fn))


class LoggingHook:
    """Logs every event with the stdlib :mod:`logging` (logger ``pystator.transitions``).

    ``log_level`` is the level of outcomes (successes and rejections); the incoming event and
    the start of its evaluation are logged at DEBUG, errors at WARNING.
    """

    def __init__(
        self,
        log_level: int = logging.INFO,
        logger_name: str = DEFAULT_TRANSITIONS_LOGGER,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self.logger = logger or logging.getLogger(logger_name)
        self.log_level = log_level

    @property
    def level(self) -> int:
        """Alias of ``log_level``."""
        return self.log_level

    def on_before_process(
        self, entity_id: str | None, current_state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        """Log (DEBUG) the incoming event."""
        self.logger.debug("processing %s for %s in state %s", trigger, entity_id, current_state)

    def on_transition_start(
        self, current_state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        """Log (DEBUG) the start of the evaluation."""
        self.logger.debug("evaluating %s from %s", trigger, current_state)

    def on_transition_complete(
        self, result: TransitionResult, duration_ms: float, context: Mapping[str, Any]
    ) -> None:
        """Log the outcome at ``log_level``, with the rejection reason when it was rejected."""
        if result.success:
            self.logger.log(
                self.log_level,
                "%s: %s -> %s (%.3f ms)",
                result.trigger,
                result.source_state,
                result.target_state,
                duration_ms,
            )
        else:
            self.logger.log(
                self.log_level,
                "%s rejected in %s: %s (%.3f ms)",
                result.trigger,
                result.source_state,
                result.metadata.get("reason", result.error),
                duration_ms,
            )

    def on_transition_error(
        self, error: BaseException, current_state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        """Log (WARNING) an event whose processing raised."""
        self.logger.warning(
            "processing %s in %s raised %s: %s",
            trigger,
            current_state,
            type(error).__name__,
            error,
        )


class StructuredLoggingHook:
    """Logs one record per lifecycle step with its fields as data, for JSON log pipelines.

    Each record's message is the event name (``fsm.before_process``, ``fsm.transition_start``,
    ``fsm.transition_complete``, ``fsm.transition_error``); the fields (``entity_id``,
    ``source_state``, ``target_state``, ``trigger``, ``success``, ``duration_ms``, ``reason``,
    ``error_type`` …) are in the record's ``fsm`` attribute (``extra={"fsm": {...}}``), which
    structlog's and python-json-logger's stdlib integrations render as keys.
    ``include_context=True`` adds the context's keys (never their values).
    """

    def __init__(
        self,
        logger_name: str = DEFAULT_TRANSITIONS_LOGGER,
        *,
        log_level: int = logging.INFO,
        include_context: bool = False,
        logger: logging.Logger | None = None,
    ) -> None:
        self.logger = logger or logging.getLogger(logger_name)
        self.log_level = log_level
        self.include_context = include_context

    def _emit(self, level: int, event: str, fields: dict[str, Any], ctx: Mapping[str, Any]) -> None:
        if self.include_context:
            fields["context_keys"] = sorted(str(k) for k in ctx)
        self.logger.log(level, event, extra={"fsm": fields})

    def on_before_process(
        self, entity_id: str | None, current_state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        """``fsm.before_process`` (DEBUG)."""
        fields = {"entity_id": entity_id, "source_state": current_state, "trigger": trigger}
        self._emit(logging.DEBUG, "fsm.before_process", fields, context)

    def on_transition_start(
        self, current_state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        """``fsm.transition_start`` (DEBUG)."""
        fields = {"entity_id": current_entity(context), "source_state": current_state}
        fields["trigger"] = trigger
        self._emit(logging.DEBUG, "fsm.transition_start", fields, context)

    def on_transition_complete(
        self, result: TransitionResult, duration_ms: float, context: Mapping[str, Any]
    ) -> None:
        """``fsm.transition_complete`` at ``log_level``."""
        fields: dict[str, Any] = {
            "entity_id": current_entity(context),
            "source_state": result.source_state,
            "target_state": result.target_state,
            "trigger": result.trigger,
            "success": result.success,
            "duration_ms": round(duration_ms, 3),
        }
        if not result.success:
            fields["reason"] = result.metadata.get("reason")
        self._emit(self.log_level, "fsm.transition_complete", fields, context)

    def on_transition_error(
        self, error: BaseException, current_state: str, trigger: str, context: Mapping[str, Any]
    ) -> None:
        """``fsm.transition_error`` (ERROR)."""
        fields = {
            "entity_id": current_entity(context),
            "source_state": current_state,
            "trigger": trigger,
            "error_type": type(error).__name__,
            "error": str(error),
        }
        self._emit(logging.ERROR, "fsm.transition_error", fields, context)


@dataclass(frozen=True, slots=True)
class TransitionMetrics:
    """One processed event as the metrics see it (``MetricsCollector.recent()``)."""

    trigger: str
    source_state: str
    target_state: str | None
    success: bool
    duration_ms: float
    error_type: str | None = None

    @classmethod
    def from_result(cls, result: TransitionResult, duration_ms: float) -> TransitionMetrics:
        """The metrics of a completed evaluation."""
        return cls(
            trigger=result.trigger,
            source_state=result.source_state,
            target_state=result.target_state,
            success=result.success,
            duration_ms=duration_ms,
        )


class MetricsCollector:
    """Counts transitions and keeps a bounded window of durations for the percentiles.

    ``get_summary()`` returns the documented keys: ``total_transitions``, ``successful``,
    ``failed`` (rejections), ``errors`` (processing raised), ``success_rate``, ``by_trigger``,
    ``by_source_state``, ``by_target_state`` (counts) and ``duration`` (``min_ms``, ``max_ms``,
    ``avg_ms``, ``p50_ms``, ``p95_ms``, ``p99_ms`` over the last ``window`` transitions).
    """

    def __init__(self, *, window: int = DEFAULT_METRICS_WINDOW) -> None:
        if window < 1:
            raise ValueError("the metrics window must hold at least one duration")
        self._lock = threading.Lock()
        self._window = window
        self.reset()

    def reset(self) -> None:
        """Forget everything collected so far (start a new reporting window)."""
        with self._lock:
            self._total = 0
            self._successful = 0
            self._errors = 0
            self._durations: deque[float] = deque(maxlen=self._window)
            self._recent: deque[TransitionMetrics] = deque(maxlen=self._window)
            self._by_trigger: dict[str, int] = {}
            self._by_source: dict[str, int] = {}
            self._by_target: dict[str, int] = {}

    def on_before_process(
        self,
        entity_id: str | None,
        current_state: str,
        trigger: str,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Nothing to count yet (the event is counted when it completes or raises)."""

    def on_transition_start(
        self, current_state: str, trigger: str, context: Mapping[str, Any] | None = None
    ) -> None:
        """Nothing to count yet (the duration is measured by the observer)."""

    def on_transition_complete(
        self, result: TransitionResult, duration_ms: float, context: Mapping[str, Any] | None = None
    ) -> None:
        """Count a processed event (a rejection counts as failed) and its duration."""
        with self._lock:
            self._total += 1
            self._successful += result.success
            _bump(self._by_trigger, result.trigger)
            _bump(self._by_source, result.source_state)
            if result.success and result.target_state is not None:
                _bump(self._by_target, result.target_state)
            self._durations.append(duration_ms)
            self._recent.append(TransitionMetrics.from_result(result, duration_ms))

    def recent(self) -> list[TransitionMetrics]:
        """The last ``window`` processed events (errors included), oldest first."""
        with self._lock:
            return list(self._recent)

    def on_transition_error(
        self,
        error: BaseException,
        current_state: str,
        trigger: str,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Count an event whose processing raised (an attempt that neither succeeded nor failed)."""
        with self._lock:
            self._total += 1
            self._errors += 1
            _bump(self._by_trigger, trigger)
            _bump(self._by_source, current_state)
            self._recent.append(
                TransitionMetrics(
                    trigger=trigger,
                    source_state=current_state,
                    target_state=None,
                    success=False,
                    duration_ms=0.0,
                    error_type=type(error).__name__,
                )
            )

    def get_summary(self) -> dict[str, Any]:
        """The documented summary (see the class docstring)."""
        with self._lock:
            total, ok, errors = self._total, self._successful, self._errors
            durations = sorted(self._durations)
            by_trigger = dict(self._by_trigger)
            by_source = dict(self._by_source)
            by_target = dict(self._by_target)
        return {
            "total_transitions": total,
            "successful": ok,
            "failed": total - ok - errors,
            "errors": errors,
            "success_rate": ok / total if total else 0.0,
            "by_trigger": by_trigger,
            "by_source_state": by_source,
            "by_target_state": by_target,
            "duration": _duration_stats(durations),
        }


class DwellTimeTracker:
    """Measures how long entities stay in each state (time between entering and leaving it).

    Keyed by entity (the Orchestrator's or session's entity, else the context's ``_entity_id``);
    evaluations without an entity are ignored. ``get_dwell_times()`` gives per-state statistics
    (``count``, ``total_ms``, ``avg_ms``, ``min_ms``, ``max_ms``) of completed stays;
    ``current_dwell_ms(entity_id)`` the time spent so far in the current state. ``clock`` returns
    seconds (default :func:`time.monotonic`).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entered: dict[str, tuple[str, float]] = {}
        self._stays: dict[str, list[float]] = {}

    def on_transition_complete(
        self, result: TransitionResult, duration_ms: float, context: Mapping[str, Any] | None = None
    ) -> None:
        """On a successful transition, close the stay in the source state and open the target's."""
        entity = current_entity(context)
        if entity is None or not result.success or result.target_state is None:
            return
        now = self._clock()
        with self._lock:
            previous = self._entered.get(entity)
            if previous is not None and previous[0] == result.source_state:
                stay_ms = (now - previous[1]) * 1000
                self._stays.setdefault(result.source_state, []).append(stay_ms)
            self._entered[entity] = (result.target_state, now)

    def current_dwell_ms(self, entity_id: str) -> float | None:
        """Milliseconds ``entity_id`` has been in its current state (None if never seen)."""
        with self._lock:
            entered = self._entered.get(entity_id)
        return None if entered is None else (self._clock() - entered[1]) * 1000

    def current_state(self, entity_id: str) -> str | None:
        """The state ``entity_id`` was last seen entering (None if never seen)."""
        with self._lock:
            entered = self._entered.get(entity_id)
        return None if entered is None else entered[0]

    def get_dwell_times(self) -> dict[str, dict[str, float]]:
        """Per state: ``count``, ``total_ms``, ``avg_ms``, ``min_ms``, ``max_ms`` of finished stays."""
        with self._lock:
            stays = {state: list(values) for state, values in self._stays.items()}
        return {
            state: {
                "count": len(values),
                "total_ms": sum(values),
                "avg_ms": sum(values) / len(values),
                "min_ms": min(values),
                "max_ms": max(values),
            }
            for state, values in stays.items()
        }

    def reset(self) -> None:
        """Forget every stay and every entity."""
        with self._lock:
            self._entered.clear()
            self._stays.clear()


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _percentile(ordered: list[float], fraction: float) -> float:
    rank = max(1, math.ceil(fraction * len(ordered)))  # nearest-rank percentile
    return ordered[rank - 1]


def _duration_stats(ordered: list[float]) -> dict[str, float]:
    if not ordered:
        return dict.fromkeys(("min_ms", "max_ms", "avg_ms", "p50_ms", "p95_ms", "p99_ms"), 0.0)
    return {
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        "avg_ms": sum(ordered) / len(ordered),
        "p50_ms": _percentile(ordered, 0.50),
        "p95_ms": _percentile(ordered, 0.95),
        "p99_ms": _percentile(ordered, 0.99),
    }
