"""Plain records shared by the pure step, the stores and the worker: an entity and an event."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

#: Version of an entity that has never been written. The first write stores version 1.
NO_VERSION = 0

#: The trigger of a creation (an entity's entry into the machine's initial configuration): the
#: label of its history row and of the ``_event`` its actions see.
CREATED_TRIGGER = "__entity_created__"

#: ``(machine, entity_id)``: the key of one entity everywhere (stores, nudges, claims).
EntityKey = tuple[str, str]


class Outcome(StrEnum):
    """What one attempt at an event came to (logged, counted, returned by the pure step)."""

    APPLIED = "applied"  # state written (new version)
    REJECTED = "rejected"  # business rejection: nothing written, not retried
    STALE = "stale"  # a timer for a state entry that no longer holds: dropped
    RETRY = "retry"  # the attempt failed; the event is due again later
    DEAD = "dead"  # the last attempt failed; the event is dead-lettered


class EventStatus(StrEnum):
    """The lifecycle of a stored event (``worker_events.status``)."""

    PENDING = "pending"
    COMPLETED = "completed"  # applied
    REJECTED = "rejected"
    STALE = "stale"
    DEAD = "dead"
    CANCELLED = "cancelled"
    DISCARDED = "discarded"

    @classmethod
    def after(cls, outcome: Outcome) -> EventStatus:
        """The status an event takes after an attempt with ``outcome``."""
        return _STATUS_AFTER[outcome]


_STATUS_AFTER = {
    Outcome.APPLIED: EventStatus.COMPLETED,
    Outcome.REJECTED: EventStatus.REJECTED,
    Outcome.STALE: EventStatus.STALE,
    Outcome.RETRY: EventStatus.PENDING,
    Outcome.DEAD: EventStatus.DEAD,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityRecord:
    """The persisted state of one entity of one machine.

    ``version`` starts at 1 and grows by exactly one with every write; stores only write
    ``WHERE version = expected``. ``entries`` maps every active state (leaf and ancestors, or the
    encoded parallel configuration) to the version at which it was entered, so a timer armed on
    entering a state can tell whether the entity is still in that same entry.
    ``machine_version`` is the registry version of the definition its last write was made with
    (None for a definition from a file or from code): a pinned machine applies its events with it.
    """

    machine: str
    entity_id: str
    state: str
    context: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1
    entries: Mapping[str, int] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    machine_version: int | None = None


class EventOrigin(StrEnum):
    """Where an event came from (stored in history rows and worker events)."""

    SUBMIT = "submit"  # a worker event as stored by submit_event (applied with origin EVENT)
    DIRECT = "direct"  # Orchestrator.process_event / EntitySession
    EVENT = "event"  # submit_event -> worker
    TIMER = "timer"  # a fired after:/timeout: timer
    REPLAY = "replay"  # an operator replayed a dead or rejected event
    MIGRATION = "migration"  # a publish's state map moved the entity (history rows only)


class EventKind(StrEnum):
    """What an event asks for (``worker_events.kind``): a named trigger, or a data update."""

    EVENT = "event"  # a named trigger (the default)
    APPLY_DATA = "apply_data"  # a trigger-less data update routed by ``when`` rules


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerRef:
    """Identifies the state entry a fired timer belongs to."""

    key: str
    state: str
    entry: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EventInput:
    """One event to apply to one entity."""

    trigger: str
    context: Mapping[str, Any] = field(default_factory=dict)
    event_id: int | None = None
    origin: str = EventOrigin.DIRECT
    timer: TimerRef | None = None  # set for fired timers: applied only if the entry still holds
    #: ``apply_data``: ``context`` is the data to merge, ``trigger`` only a label (the
    #: transition taken is chosen by the ``when`` rules, :mod:`pystator.fsm_core.apply_data`)
    kind: str = EventKind.EVENT

    @property
    def name(self) -> str:
        """The documented name of :attr:`trigger`."""
        return self.trigger

    @property
    def payload(self) -> Mapping[str, Any]:
        """The documented name of :attr:`context` (the event's data)."""
        return self.context


#: The documented name of an event given to the engine (trigger + payload): :class:`EventInput`.
Event = EventInput


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One row of ``transition_history``: the write that produced ``version``."""

    machine: str
    entity_id: str
    version: int
    source_state: str | None
    target_state: str
    trigger: str | None
    event_id: int | None
    origin: str
    actions: tuple[str, ...]
    payload: Mapping[str, Any] | None
    created_at: datetime
    machine_version: int | None = None  # the registry version that applied it, if any
    # the context the guards saw (stored context + payload, before effects): what replay needs
    guard_context: Mapping[str, Any] | None = None

    def transition_fields(self) -> dict[str, Any]:
        """What the write did, as plain values (``actions`` a list, ``payload`` a dict): the
        fields every store keeps per history row besides its key and machine version."""
        return {
            "version": self.version,
            "source_state": self.source_state,
            "target_state": self.target_state,
            "trigger": self.trigger,
            "event_id": self.event_id,
            "origin": self.origin,
            "actions": list(self.actions),
            "payload": None if self.payload is None else dict(self.payload),
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmedTimer:
    """A timer of one entity's state entry: armed on entering ``state`` at version ``entry``.

    ``due_at`` is None for a timer being cancelled (only its identity matters then).
    """

    machine: str
    entity_id: str
    key: str
    state: str
    entry: int
    trigger: str
    due_at: datetime | None = None
    #: Opaque trace context (W3C traceparent) of the apply that armed it, carried to the event
    #: its firing creates; the engine never reads it.
    trace: str | None = field(default=None, compare=False)

    @property
    def timer_id(self) -> str:
        """Deterministic id: the same timer always gets the same id (idempotent arm/cancel).

        A digest of (machine, entity, key, entry), 42 characters whatever their lengths, so every
        valid entity id fits every column that stores it.
        """
        identity = json.dumps([self.machine, self.entity_id, self.key, self.entry])
        return "t-" + hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:40]

    @property
    def ref(self) -> TimerRef:
        """The reference a fired timer's event carries."""
        return TimerRef(key=self.key, state=self.state, entry=self.entry)
