"""The engine's built-in guards and actions (registered by :mod:`pystator.plugins.builtins`).

Guards: ``always``, ``never``, ``key_present`` and ``key_absent`` (``params: {key: k}`` or
``{keys: [..]}``). Actions: ``noop``, ``log``, ``trace``, ``set_context``, ``snapshot``,
``copy_key``, ``validate_keys``, ``publish`` and ``emit_metric`` (the last two through
:mod:`~pystator.fsm_core.sinks`). Actions that write to the context write to the mapping the
executor passes them (after commit): use declarative effects for changes that must be stored.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from pystator.fsm_core.sinks import (
    EMIT_METRIC_ACTION,
    PUBLISH_ACTION,
    LoggingEventSink,
    LoggingMetricSink,
    create_emit_metric_action,
    create_publish_action,
)

ACTION_LOGGER = logging.getLogger("pystator.actions")
TRACE_KEY = "_trace"
SNAPSHOTS_KEY = "_snapshots"
VALIDATION_ERRORS_KEY = "_validation_errors"
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _keys(key: str | None, keys: Iterable[str] | None) -> list[str]:
    found = ([key] if key is not None else []) + list(keys or [])
    if not found:
        raise ValueError("needs params.key or params.keys")
    return found


def always(ctx: Mapping[str, Any]) -> bool:
    """Always passes."""
    return True


def never(ctx: Mapping[str, Any]) -> bool:
    """Never passes."""
    return False


def key_present(
    ctx: Mapping[str, Any], key: str | None = None, keys: Iterable[str] | None = None
) -> bool:
    """Every named key is in the context and not null."""
    return all(ctx.get(k) is not None for k in _keys(key, keys))


def key_absent(
    ctx: Mapping[str, Any], key: str | None = None, keys: Iterable[str] | None = None
) -> bool:
    """No named key holds a value (absent or null)."""
    return all(ctx.get(k) is None for k in _keys(key, keys))


def _user_data(ctx: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ctx.items() if not str(k).startswith("_")}


def _writable(ctx: Mapping[str, Any], action: str) -> MutableMapping[str, Any]:
    if not isinstance(ctx, MutableMapping):
        raise TypeError(f"{action} writes to the context, which is read-only here")
    return ctx


def noop(ctx: Mapping[str, Any], **params: Any) -> None:
    """Does nothing (a placeholder)."""


def log(ctx: Mapping[str, Any], *, message: str | None = None, level: str = "info") -> str:
    """Log ``message`` (default: which entity moved) at ``level`` on ``pystator.actions``."""
    if level not in _LEVELS:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}")
    text = message or f"transition of entity {ctx.get('_entity_id', '?')}"
    ACTION_LOGGER.log(_LEVELS[level], "%s", text)
    return text


def trace(ctx: Mapping[str, Any], **params: Any) -> None:
    """Append the user part of the context (and any params) to ``ctx["_trace"]``."""
    entry = {**_user_data(ctx), **({"params": dict(params)} if params else {})}
    target = _writable(ctx, "trace")
    target[TRACE_KEY] = [*target.get(TRACE_KEY, []), entry]


def set_context(ctx: Mapping[str, Any], **params: Any) -> None:
    """Copy every param into the context."""
    _writable(ctx, "set_context").update(params)


def snapshot(ctx: Mapping[str, Any], *, label: str | None = None) -> None:
    """Append a deep copy of the user part of the context to ``ctx["_snapshots"]``."""
    target = _writable(ctx, "snapshot")
    entry = {"label": label, "data": copy.deepcopy(_user_data(ctx))}
    target[SNAPSHOTS_KEY] = [*target.get(SNAPSHOTS_KEY, []), entry]


def copy_key(ctx: Mapping[str, Any], **params: Any) -> bool:
    """Copy ``params["from"]`` to ``params["to"]``; nothing happens when the source is absent."""
    source, dest = params.get("from"), params.get("to")
    if not isinstance(source, str) or not isinstance(dest, str):
        raise ValueError("copy_key needs params.from and params.to")
    if source not in ctx:
        return False
    _writable(ctx, "copy_key")[dest] = ctx[source]
    return True


def validate_keys(ctx: Mapping[str, Any], *, required: Iterable[str] = ()) -> list[str]:
    """Warn about required keys that are absent or null; list them in ``_validation_errors``."""
    errors = [f"missing required key {k!r}" for k in required if ctx.get(k) is None]
    for error in errors:
        ACTION_LOGGER.warning("validate_keys: %s", error)
    _writable(ctx, "validate_keys")[VALIDATION_ERRORS_KEY] = errors
    return errors


BUILTIN_GUARDS: Mapping[str, Callable[..., bool]] = {
    "always": always,
    "never": never,
    "key_present": key_present,
    "key_absent": key_absent,
}
BUILTIN_ACTIONS: Mapping[str, Callable[..., Any]] = {
    "noop": noop,
    "log": log,
    "trace": trace,
    "set_context": set_context,
    "snapshot": snapshot,
    "copy_key": copy_key,
    "validate_keys": validate_keys,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogEntry:
    """One built-in, for documentation and tooling."""

    kind: str  # "guard" or "action"
    name: str
    description: str


def sink_actions() -> dict[str, Callable[..., Any]]:
    """The ``publish`` and ``emit_metric`` actions on the logging sinks (what a registry gets
    unless the application registers its own)."""
    return {
        PUBLISH_ACTION: create_publish_action(LoggingEventSink()),
        EMIT_METRIC_ACTION: create_emit_metric_action(LoggingMetricSink()),
    }


def builtin_catalog() -> list[CatalogEntry]:
    """Every built-in guard and action with its one-line description."""
    entries = [
        CatalogEntry(kind="guard", name=n, description=_summary(f))
        for n, f in BUILTIN_GUARDS.items()
    ]
    entries += [
        CatalogEntry(kind="action", name=n, description=_summary(f))
        for n, f in BUILTIN_ACTIONS.items()
    ]
    entries.append(
        CatalogEntry(
            kind="action",
            name=PUBLISH_ACTION,
            description="Send a domain event to the event sink (params: topic, include).",
        )
    )
    entries.append(
        CatalogEntry(
            kind="action",
            name=EMIT_METRIC_ACTION,
            description="Send a measurement to the metric sink (params: name, value, type, tags).",
        )
    )
    return entries


def _summary(fn: Callable[..., Any]) -> str:
    return (fn.__doc__ or "").strip().splitlines()[0]


__all__ = [
    "BUILTIN_ACTIONS",
    "BUILTIN_GUARDS",
    "CatalogEntry",
    "builtin_catalog",
    "sink_actions",
]
