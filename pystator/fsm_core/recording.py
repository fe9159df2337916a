"""Record the events sent to an :class:`EntitySession` and replay them on another one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.errors import ConfigurationError
from pystator.fsm_core.results import TransitionResult

if TYPE_CHECKING:
    from pystator.fsm_core.session import EntitySession


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event sent through an :class:`EventRecorder`: trigger, payload and when."""

    trigger: str
    payload: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (the timestamp in ISO 8601)."""
        return {
            "trigger": self.trigger,
            "payload": dict(self.payload),
            "timestamp": self.timestamp.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordedEvent:
        """The inverse of :meth:`to_dict`."""
        if not isinstance(data, Mapping) or not isinstance(data.get("trigger"), str):
            raise ConfigurationError("a recorded event needs a string 'trigger'")
        stamp = data.get("timestamp")
        when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else datetime.now(UTC)
        return cls(trigger=data["trigger"], payload=dict(data.get("payload") or {}), timestamp=when)


class EventRecorder:
    """Wraps a session: :meth:`send` forwards to it and records the event."""

    def __init__(self, session: EntitySession) -> None:
        self.session = session
        self._events: list[RecordedEvent] = []

    @property
    def events(self) -> list[RecordedEvent]:
        """The recorded events, oldest first."""
        return list(self._events)

    def send(self, trigger: str, **payload: Any) -> TransitionResult:
        """Send ``trigger`` to the wrapped session and record it (rejected events too)."""
        self._events.append(RecordedEvent(trigger=trigger, payload=dict(payload)))
        return self.session.send(trigger, **payload)

    async def asend(self, trigger: str, **payload: Any) -> TransitionResult:
        """Like :meth:`send`, awaiting async guards."""
        self._events.append(RecordedEvent(trigger=trigger, payload=dict(payload)))
        result: TransitionResult = await self.session.asend(trigger, **payload)
        return result

    def replay(self, session: EntitySession) -> list[TransitionResult]:
        """Send every recorded event to ``session``, in order; their results."""
        return [session.send(e.trigger, **e.payload) for e in self._events]

    def clear(self) -> None:
        """Forget the recorded events."""
        self._events.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)
