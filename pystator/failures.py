"""What is kept of a failed attempt (an event's, or an outbox action's): one JSON object each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pystator.fsm_core.errors import FSMError


def describe_error(exc: BaseException, attempt: int, now: datetime) -> dict[str, Any]:
    """The JSON kept per failed attempt: type, message, error code, cause and when."""
    error: dict[str, Any] = {
        "attempt": attempt,
        "error": type(exc).__name__,
        "message": str(exc),
        "at": now.isoformat(),
    }
    if isinstance(exc, FSMError):
        error["code"] = exc.code.value
    cause = exc.__cause__
    if cause is not None:
        error["cause"] = f"{type(cause).__name__}: {cause}"
    return error


__all__ = ["describe_error"]
