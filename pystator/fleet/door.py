"""The door: what an event must look like before anything is stored, the same on every database.

Every rule here exists because PostgreSQL, SQLite or the fleet could not keep the value, or
because one value could hurt everyone else's work (a huge or endlessly nested context). A refused
event raises :class:`~pystator.fsm_core.errors.InvalidEventError` whose message names the field
(with its path inside the context) and the rule, and whose ``details`` carry both; nothing is
stored. The rules, with their defaults (settings in parentheses):

- ``entity_id``, ``trigger``, ``idempotency_key``: non-empty strings, at most 255 / 200 / 255
  characters, no control characters and no lone surrogates.
- ``context``: a mapping with string keys, JSON values only (strings, finite numbers, booleans,
  null, lists, mappings), no NUL character and no lone surrogate in any key or string, nested at
  most 32 levels (``PYSTATOR_MAX_CONTEXT_DEPTH``), at most 64 KiB as UTF-8 JSON
  (``PYSTATOR_MAX_CONTEXT_BYTES``).
- ``max_attempts``: an integer from 1 to 100.
- ``fires_at``: a datetime from 1970 up to 10 years ahead; a naive one is taken as UTC, every
  one is stored in UTC.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pystator.config.settings import (
    DEFAULT_MAX_CONTEXT_BYTES,
    DEFAULT_MAX_CONTEXT_DEPTH,
)
from pystator.fsm_core.clock import as_utc
from pystator.fsm_core.errors import InvalidEventError
from pystator.stores.sql.schema import ENTITY_ID_LENGTH, IDEMPOTENCY_KEY_LENGTH, TRIGGER_LENGTH

MAX_ATTEMPTS_LIMIT = 100
EARLIEST_FIRES_AT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_FIRES_AT_AHEAD = timedelta(days=3653)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Input limits enforced at the door."""

    max_context_bytes: int = DEFAULT_MAX_CONTEXT_BYTES
    max_context_depth: int = DEFAULT_MAX_CONTEXT_DEPTH
    max_entity_id_length: int = ENTITY_ID_LENGTH
    max_idempotency_key_length: int = IDEMPOTENCY_KEY_LENGTH
    max_trigger_length: int = TRIGGER_LENGTH
    max_attempts: int = MAX_ATTEMPTS_LIMIT


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedContext:
    """A context that passed the door, with its JSON text (what the database stores)."""

    value: dict[str, Any]
    encoded: str


def refuse(path: str, rule: str, message: str) -> InvalidEventError:
    """The door's error. The message starts with ``path`` (``context.items[2].name``);
    ``details`` carry the top-level ``field``, the ``path`` and the ``rule``."""
    field = re.split(r"[.\[ ]", path, maxsplit=1)[0]
    return InvalidEventError(
        f"{path}: {message}", details={"field": field, "path": path, "rule": rule}
    )


#: Unicode category Cc: C0 controls, DEL and C1 controls.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _is_utf8(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (no UTF-8 encoding exists for it)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def bad_character(text: str) -> str | None:
    """``control`` / ``surrogate`` when ``text`` holds such a character, else None."""
    if _CONTROL.search(text):
        return "control"
    return None if _is_utf8(text) else "surrogate"


def check_name(field: str, value: object, *, limit: int, required: bool = True) -> str | None:
    """An id, trigger or key: a non-empty string within ``limit``, no control characters."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise refuse(field, "type", "must be a non-empty string")
    if len(value) > limit:
        raise refuse(field, "length", f"is {len(value)} characters long; the limit is {limit}")
    bad = bad_character(value)
    if bad == "control":
        raise refuse(field, "control_character", "must not contain control characters")
    if bad == "surrogate":
        raise refuse(field, "encoding", "is not valid Unicode (a lone surrogate)")
    return value


def check_max_attempts(value: object, limits: Limits) -> int:
    """An integer from 1 to ``limits.max_attempts``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise refuse("max_attempts", "type", "must be an integer")
    if not 1 <= value <= limits.max_attempts:
        raise refuse(
            "max_attempts", "range", f"must be from 1 to {limits.max_attempts}, got {value}"
        )
    return value


def check_fires_at(value: object, now: datetime) -> datetime:
    """A datetime from 1970 up to ten years after ``now``, in UTC (naive ones are UTC)."""
    if not isinstance(value, datetime):
        raise refuse("fires_at", "type", f"must be a datetime, got {type(value).__name__}")
    try:
        moment = as_utc(value)
    except (OverflowError, ValueError) as exc:
        raise refuse("fires_at", "range", f"cannot be expressed in UTC ({exc})") from exc
    if moment < EARLIEST_FIRES_AT or moment > now + LATEST_FIRES_AT_AHEAD:
        raise refuse("fires_at", "range", "must be between 1970 and ten years from now")
    return moment


def check_context(value: object, limits: Limits) -> CheckedContext:
    """A JSON object within the depth and size limits, storable as UTF-8 on any database."""
    if value is None:
        return CheckedContext(value={}, encoded="{}")
    if not isinstance(value, Mapping):
        raise refuse("context", "type", f"must be a mapping, got {type(value).__name__}")
    _walk(value, limits.max_context_depth)
    encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    size = len(encoded.encode("utf-8"))
    if size > limits.max_context_bytes:
        raise refuse(
            "context",
            "size",
            f"is {size} bytes of JSON; the limit is {limits.max_context_bytes} "
            "(PYSTATOR_MAX_CONTEXT_BYTES)",
        )
    return CheckedContext(value=dict(value), encoded=encoded)


def _walk(root: Mapping[Any, Any], max_depth: int) -> None:
    """Check every key and value without recursion (a deep input must not blow the stack)."""
    stack: list[tuple[str, Any, int]] = [("context", root, 1)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(path, value)
        elif isinstance(value, bool) or value is None or isinstance(value, int):
            continue
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise refuse(path, "number", "must be a finite number (no NaN or infinity)")
        elif isinstance(value, Mapping | list | tuple):
            if depth > max_depth:
                raise refuse(
                    path,
                    "depth",
                    f"nests deeper than {max_depth} levels (PYSTATOR_MAX_CONTEXT_DEPTH)",
                )
            stack.extend(_children(path, value, depth))
        else:
            raise refuse(path, "type", f"{type(value).__name__} is not a JSON value")


def _children(path: str, value: Mapping[Any, Any] | Sequence[Any], depth: int) -> list[Any]:
    if not isinstance(value, Mapping):
        return [(f"{path}[{index}]", item, depth + 1) for index, item in enumerate(value)]
    children = []
    for key, item in value.items():
        if not isinstance(key, str):
            raise refuse(path, "key", f"keys must be strings, got {type(key).__name__}")
        _check_text(f"{path} key {key[:40]!r}", key)
        children.append((f"{path}.{key[:40]}", item, depth + 1))
    return children


def _check_text(path: str, text: str) -> None:
    if "\x00" in text:
        raise refuse(path, "nul", "strings must not contain NUL (\\u0000)")
    if not _is_utf8(text):
        raise refuse(path, "encoding", "is not valid Unicode (a lone surrogate)")


def fingerprint(entity_id: str, trigger: str, encoded_context: str) -> str:
    """What makes two submissions under one idempotency key the same event (sha256 hex).

    The context is compared as canonical JSON, so key order does not matter.
    """
    canonical = json.dumps(
        [entity_id, trigger, json.loads(encoded_context)], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


__all__ = [
    "EARLIEST_FIRES_AT",
    "LATEST_FIRES_AT_AHEAD",
    "MAX_ATTEMPTS_LIMIT",
    "CheckedContext",
    "Limits",
    "bad_character",
    "check_context",
    "check_fires_at",
    "check_max_attempts",
    "check_name",
    "fingerprint",
    "refuse",
]
