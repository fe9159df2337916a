"""How a timer travels outside the process: a small JSON document, and epoch milliseconds.

Shared by the schedulers that hand timers to another system (Redis, a Celery broker).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pystator.fsm_core.errors import SchedulerError
from pystator.fsm_core.records import ArmedTimer


def to_millis(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (a sorted-set score)."""
    if moment.tzinfo is None:
        raise SchedulerError(f"naive datetime {moment.isoformat()}: timers need aware UTC times")
    return int(moment.timestamp() * 1000)


def encode_timer(timer: ArmedTimer) -> str:
    """The timer as compact JSON (it must have an aware ``due_at``)."""
    if timer.due_at is None:
        raise SchedulerError(f"timer {timer.timer_id!r} has no due_at and cannot be armed")
    to_millis(timer.due_at)
    return json.dumps(
        {
            "machine": timer.machine,
            "entity_id": timer.entity_id,
            "key": timer.key,
            "state": timer.state,
            "entry": timer.entry,
            "trigger": timer.trigger,
            "due_at": timer.due_at.astimezone(UTC).isoformat(),
        },
        separators=(",", ":"),
    )


def decode_timer(raw: bytes | str) -> ArmedTimer:
    """Rebuild an :class:`ArmedTimer` from its JSON (ValueError/KeyError/TypeError if bad)."""
    doc = json.loads(raw)
    return ArmedTimer(
        machine=doc["machine"],
        entity_id=doc["entity_id"],
        key=doc["key"],
        state=doc["state"],
        entry=int(doc["entry"]),
        trigger=doc["trigger"],
        due_at=datetime.fromisoformat(doc["due_at"]),
    )


__all__ = ["decode_timer", "encode_timer", "to_millis"]
