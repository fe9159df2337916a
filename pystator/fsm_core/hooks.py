"""Lifecycle hooks around ``process``: logging, metrics, tracing — attached, never forked.

A :class:`TransitionObserver` holds hooks and notifies them; ``machine.attach_observer(observer)``
makes a machine report every ``process`` to it. A hook that raises is logged loudly on the
``pystator.hooks`` logger (with the traceback) and never breaks processing. Hooks may implement
any subset of the four :class:`TransitionHook` methods.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from pystator.fsm_core.results import TransitionResult

HOOK_LOGGER = logging.getLogger("pystator.hooks")
DEFAULT_METRICS_WINDOW = 10_000  # most recent durations kept for min/avg/max/p95
_HOOK_METHODS = (
    "on_before_process",
    "on_transition_start",
    "on_transition_complete",
    "on_transition_error",
)


@runtime_checkable
class TransitionHook(Protocol):
    """The four lifecycle callbacks a hook may implement."""

    def on_before_process(self, state: str, trigger: str, context: Mapping[str, Any]) -> None:
        """Called before anything is looked up for the event."""

    def on_transition_start(self, state: str, trigger: str, context: Mapping[str, Any]) -> None:
        """Called when the engine starts evaluating the transition."""

    def on_transition_complete(self, result: TransitionResult, duration_ms: float) -> None:
        """Called with the result (success or business rejection) and the time it took."""

    def on_transition_error(self, state: str, trigger: str, error: BaseException) -> None:
        """Called when processing raised (undefined state, guard failure …)."""


class TransitionObserver:
    """Holds hooks and fans notifications out to them, isolating hook failures."""

    def __init__(self, hooks: tuple[object, ...] = ()) -> None:
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

    def notify_before_process(self, state: str, trigger: str, context: Mapping[str, Any]) -> None:
        """Tell every hook an event is about to be processed."""
        self._fire("on_before_process", state, trigger, context)

    def notify_start(self, state: str, trigger: str, context: Mapping[str, Any]) -> None:
        """Tell every hook the transition evaluation starts."""
        self._fire("on_transition_start", state, trigger, context)

    def notify_complete(self, result: TransitionResult, duration_ms: float) -> None:
        """Tell every hook the event was processed (successfully or rejected)."""
        self._fire("on_transition_complete", result, duration_ms)

    def notify_error(self, state: str, trigger: str, error: BaseException) -> None:
        """Tell every hook processing raised ``error``."""
        self._fire("on_transition_error", state, trigger, error)

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
    """Logs every event with the stdlib :mod:`logging` (logger ``pystator.transitions``)."""

    def __init__(self, logger: logging.Logger | None = None, *, level: int = logging.INFO) -> None:
        self.logger = logger or logging.getLogger("pystator.transitions")
        self.level = level

    def on_before_process(self, state: str, trigger: str, context: Mapping[str, Any]) -> None:
        """Log (DEBUG) the incoming event."""
        self.logger.debug("processing %s in state %s", trigger, state)

    def on_transition_start(self, state: str, trigger: str, context: Mapping[str, Any]) -> None:
        """Log (DEBUG) the start of the evaluation."""
        self.logger.debug("evaluating %s from %s", trigger, state)

    def on_transition_complete(self, result: TransitionResult, duration_ms: float) -> None:
        """Log the outcome at ``level`` (success) or ``level`` with the rejection reason."""
        if result.success:
            self.logger.log(
                self.level,
                "%s: %s -> %s (%.3f ms)",
                result.trigger,
                result.source_state,
                result.target_state,
                duration_ms,
            )
        else:
            self.logger.log(
                self.level,
                "%s rejected in %s: %s (%.3f ms)",
                result.trigger,
                result.source_state,
                result.metadata.get("reason", result.error),
                duration_ms,
            )

    def on_transition_error(self, state: str, trigger: str, error: BaseException) -> None:
        """Log (WARNING) an event whose processing raised."""
        self.logger.warning(
            "processing %s in %s raised %s: %s", trigger, state, type(error).__name__, error
        )


class MetricsCollector:
    """Counts transitions and keeps a bounded window of durations for percentiles."""

    def __init__(self, *, window: int = DEFAULT_METRICS_WINDOW) -> None:
        if window < 1:
            raise ValueError("the metrics window must hold at least one duration")
        self._lock = threading.Lock()
        self._window = window
        self.reset()

    def reset(self) -> None:
        """Forget everything collected so far."""
        with self._lock:
            self._total = 0
            self._successful = 0
            self._durations: deque[float] = deque(maxlen=self._window)
            self._by_trigger: dict[str, dict[str, int]] = {}

    def _count(self, trigger: str, success: bool) -> None:
        self._total += 1
        self._successful += success
        counts = self._by_trigger.get(trigger)
        if counts is None:
            counts = self._by_trigger[trigger] = {"total": 0, "successful": 0, "failed": 0}
        counts["total"] += 1
        counts["successful" if success else "failed"] += 1

    def on_transition_complete(self, result: TransitionResult, duration_ms: float) -> None:
        """Count a processed event (rejections count as failed) and its duration."""
        with self._lock:
            self._count(result.trigger, result.success)
            self._durations.append(duration_ms)

    def on_transition_error(self, state: str, trigger: str, error: BaseException) -> None:
        """Count an event whose processing raised as failed."""
        with self._lock:
            self._count(trigger, False)

    def get_summary(self) -> dict[str, Any]:
        """Totals, success rate, duration statistics (ms) over the window, counts per trigger."""
        with self._lock:
            total, ok = self._total, self._successful
            durations = sorted(self._durations)
            by_trigger = {t: dict(c) for t, c in self._by_trigger.items()}
        return {
            "total_transitions": total,
            "successful": ok,
            "failed": total - ok,
            "success_rate": ok / total if total else 0.0,
            "duration": _duration_stats(durations),
            "by_trigger": by_trigger,
        }


def _duration_stats(ordered: list[float]) -> dict[str, float]:
    if not ordered:
        return {"min_ms": 0.0, "avg_ms": 0.0, "max_ms": 0.0, "p95_ms": 0.0}
    rank = max(1, math.ceil(0.95 * len(ordered)))  # nearest-rank percentile
    return {
        "min_ms": ordered[0],
        "avg_ms": sum(ordered) / len(ordered),
        "max_ms": ordered[-1],
        "p95_ms": ordered[rank - 1],
    }
