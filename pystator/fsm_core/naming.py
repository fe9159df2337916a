"""Naming rules for states, regions, triggers, guards, actions and machines.

A name starts with a letter, a digit or ``_`` and continues with letters, digits, ``_``, ``-`` or
``.`` (``PENDING``, ``pending``, ``order.created``, ``awaiting-payment``, ``2fa_sent``). This is a
superset of the documented schema's ``^[a-z0-9_]+$``, so every documented name is valid. The
characters ``[ ] = ,`` are reserved for the encoding of parallel configurations.
"""

from __future__ import annotations

import re
from typing import Any

from pystator.fsm_core.limits import MAX_NAME_LENGTH

#: The naming rule as a regular expression (also what the HTTP API's schema declares).
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(value: Any) -> bool:
    """True when ``value`` follows the naming rules."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_NAME_LENGTH
        and _NAME.fullmatch(value) is not None
    )


def describe_name_problem(value: Any, what: str) -> str | None:
    """Why ``value`` is not a valid ``what`` (e.g. "state name"), or None when it is."""
    if value is None:
        return f"missing: a {what} is required"
    if not isinstance(value, str):
        return f"a {what} must be a string, got {type(value).__name__}"
    if not value:
        return f"a {what} must not be empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"a {what} must be at most {MAX_NAME_LENGTH} characters"
    if _NAME.fullmatch(value) is None:  # not match: "$" also matches before a final newline
        return (
            f"invalid {what} {value!r}: use letters, digits, '_', '-' or '.', "
            "starting with a letter, a digit or '_'"
        )
    return None
