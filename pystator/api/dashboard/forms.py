"""The dashboard's filter forms, read from query strings and posted forms into the operations'
filters (the same :class:`EventFilter` / :class:`ActionFilter` the API and the CLI use).

A bad value never reaches a query: it comes back as a message shown beside the form, and the
rest of the filter still applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pystator.fsm_core.records import EventStatus
from pystator.services.admin import ActionFilter, EventFilter, OutboxStatus

#: The event filter's fields, in the form's order: (name, label).
EVENT_FIELDS = (
    ("machine", "Machine"),
    ("entity_id", "Entity"),
    ("status", "Status"),
    ("trigger", "Trigger"),
    ("origin", "Origin"),
    ("idempotency_key", "Idempotency key"),
    ("error", "Error contains"),
    ("created_after", "Created after (UTC)"),
    ("created_before", "Created before (UTC)"),
)
EVENT_STATUSES = tuple(str(s) for s in EventStatus)
ORIGINS = ("submit", "timer", "replay")
ACTION_FIELDS = (("machine", "Machine"), ("entity_id", "Entity"), ("action", "Action"))
ACTION_STATUSES = tuple(str(s) for s in OutboxStatus)
#: Longest accepted text in a filter field (the columns' own limits are shorter or equal).
MAX_FIELD_LENGTH = 400


@dataclass
class ParsedForm:
    """A filter read from a form: the filter, the values to show again, the problems."""

    values: dict[str, str]
    errors: list[str] = field(default_factory=list)

    def query(self) -> dict[str, str]:
        """The non-empty values (for links that keep the filter)."""
        return {k: v for k, v in self.values.items() if v}


def _text(raw: Mapping[str, Any], name: str, errors: list[str]) -> str:
    value = str(raw.get(name) or "").strip()
    if len(value) > MAX_FIELD_LENGTH:
        errors.append(f"{name}: longer than {MAX_FIELD_LENGTH} characters")
        return ""
    return value


def parse_time(value: str) -> datetime:
    """An ISO time (a browser's ``datetime-local`` has no zone: it is taken as UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def event_filter(raw: Mapping[str, Any]) -> tuple[EventFilter, ParsedForm]:
    """The event filter of a query string or form (fields of :data:`EVENT_FIELDS`)."""
    errors: list[str] = []
    values = {name: _text(raw, name, errors) for name, _ in EVENT_FIELDS}
    if values["status"] and values["status"] not in EVENT_STATUSES:
        errors.append(f"status: {values['status']!r} is not one of {', '.join(EVENT_STATUSES)}")
        values["status"] = ""
    if values["origin"] and values["origin"] not in ORIGINS:
        errors.append(f"origin: {values['origin']!r} is not one of {', '.join(ORIGINS)}")
        values["origin"] = ""
    times: dict[str, datetime | None] = {}
    for name in ("created_after", "created_before"):
        times[name] = None
        if values[name]:
            try:
                times[name] = parse_time(values[name])
            except ValueError:
                errors.append(f"{name}: {values[name]!r} is not a time (2026-11-27T12:00)")
                values[name] = ""
    where = EventFilter(
        status=values["status"] or None,
        machine=values["machine"] or None,
        entity_id=values["entity_id"] or None,
        trigger=values["trigger"] or None,
        origin=values["origin"] or None,
        idempotency_key=values["idempotency_key"] or None,
        error=values["error"] or None,
        created_after=times["created_after"],
        created_before=times["created_before"],
    )
    return where, ParsedForm(values=values, errors=errors)


def action_filter(raw: Mapping[str, Any]) -> tuple[ActionFilter, ParsedForm]:
    """The outbox filter of a query string or form (status, machine, entity, action)."""
    errors: list[str] = []
    values = {name: _text(raw, name, errors) for name, _ in ACTION_FIELDS}
    values["status"] = _text(raw, "status", errors)
    if values["status"] and values["status"] not in ACTION_STATUSES:
        errors.append(f"status: {values['status']!r} is not one of {', '.join(ACTION_STATUSES)}")
        values["status"] = ""
    where = ActionFilter(
        status=values["status"] or None,
        machine=values["machine"] or None,
        entity_id=values["entity_id"] or None,
        action=values["action"] or None,
    )
    return where, ParsedForm(values=values, errors=errors)


def ids_of(raw: Mapping[str, Any], name: str = "ids") -> tuple[int, ...]:
    """Comma-separated ids of a form field (bad ones are a :class:`ValueError`)."""
    text = str(raw.get(name) or "").strip()
    if not text:
        return ()
    return tuple(int(part) for part in text.split(",") if part.strip())


def optional_int(raw: Mapping[str, Any], name: str) -> int | None:
    """An integer query parameter, None when absent or not a number."""
    try:
        value = int(str(raw.get(name) or ""))
    except ValueError:
        return None
    return value if value > 0 else None


__all__ = [
    "ACTION_FIELDS",
    "ACTION_STATUSES",
    "EVENT_FIELDS",
    "EVENT_STATUSES",
    "ORIGINS",
    "ParsedForm",
    "action_filter",
    "event_filter",
    "ids_of",
    "optional_int",
    "parse_time",
]
