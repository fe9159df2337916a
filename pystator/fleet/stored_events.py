"""A stored event (a ``worker_events`` row) as the pure step, a batch's results and the
``pystator apply`` span see it."""

from __future__ import annotations

from typing import Any

from pystator.fleet.batch import EventRef
from pystator.fsm_core.records import EventInput, EventOrigin, TimerRef
from pystator.stores.sql.rows import EventRow

#: Stored origins the step sees as themselves; everything else (``submit``) is an ``event``.
_ORIGINS: dict[str, EventOrigin] = {o.value: o for o in (EventOrigin.TIMER, EventOrigin.REPLAY)}


def event_input(event: EventRow) -> EventInput:
    """The pure step's view of a stored event."""
    timer = None
    if event.timer_key is not None and event.timer_state is not None:
        timer = TimerRef(
            key=event.timer_key, state=event.timer_state, entry=int(event.timer_entry or 0)
        )
    return EventInput(
        trigger=event.trigger,
        context=event.context,
        event_id=event.id,
        origin=_ORIGINS.get(event.origin, EventOrigin.EVENT),
        timer=timer,
        kind=event.kind,
    )


def span_attributes(event: EventRow) -> dict[str, Any]:
    """What the ``pystator apply`` span says about an event."""
    return {
        "pystator.machine": event.machine,
        "pystator.entity_id": event.entity_id,
        "pystator.trigger": event.trigger,
        "pystator.event_id": event.id,
        "pystator.attempt": event.attempts + 1,
        "pystator.origin": event.origin,
    }


def event_ref(event: EventRow) -> EventRef:
    """What a batch result says about a stored event."""
    return EventRef(
        id=event.id,
        machine=event.machine,
        entity_id=event.entity_id,
        trigger=event.trigger,
        attempts=event.attempts,
        due_at=event.fires_at,
    )


__all__ = ["event_input", "event_ref", "span_attributes"]
