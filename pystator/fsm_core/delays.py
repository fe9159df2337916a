"""Delays for ``after:`` and ``timeout:``: milliseconds as an integer, or ``"500ms"``/``"5s"``/…"""

from __future__ import annotations

import re
from typing import Any

from pystator.fsm_core.errors import ConfigurationError
from pystator.fsm_core.limits import MAX_DELAY_MS

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_EXPECTED = (
    "expected milliseconds (e.g. 5000) or a duration such as '500ms', '5s', '10m', '1h', '1d'"
)


class DelayError(ConfigurationError):
    """A delay value that is not a non-negative duration."""


def parse_delay(value: Any) -> int:
    """The delay in whole milliseconds; :class:`DelayError` names the accepted forms."""
    if isinstance(value, bool):
        raise DelayError(f"invalid delay {value!r}: {_EXPECTED}")
    if isinstance(value, int | float):
        if value != value or value < 0:  # NaN or negative
            raise DelayError(f"invalid delay {value!r}: must not be negative")
        return _bounded(round(value), value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise DelayError(f"invalid delay {value!r}: {_EXPECTED}")
        number, unit = match.groups()
        return _bounded(round(float(number) * _UNITS_MS[unit or "ms"]), value)
    raise DelayError(f"invalid delay of type {type(value).__name__}: {_EXPECTED}")


def _bounded(ms: int, original: Any) -> int:
    if ms > MAX_DELAY_MS:
        raise DelayError(f"invalid delay {original!r}: longer than 10 years")
    return ms
