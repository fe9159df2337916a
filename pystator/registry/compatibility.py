"""The one compatibility report: what a candidate version of a machine would do to live traffic.

A candidate is compared with the machine's current version and with the live fleet (the
entities per state, the pending events, the armed timers of the machine, read by
:mod:`pystator.stores.sql.compatibility_queries`):

* ``state_removed``: entities are in a state the candidate does not have. **Blocking** unless
  the state map sends them to a state of the candidate (then the problem says where).
* ``transition_removed``: pending events whose (entity state, trigger) the current version
  handles and the candidate (after the state map) does not. **Blocking**: they would be rejected.
* ``trigger_removed``: pending events whose trigger the candidate does not know at all.
  **Blocking**, for the same reason.
* ``timer_orphaned``: armed timers whose (state, trigger, key) the candidate no longer arms.
  Not blocking: publishing cancels them and reports how many.

Publishing (:func:`pystator.registry.versions.publish`), the runtime's compatibility check and
a shadow's promotion all call :func:`compatibility_report` (or :func:`assess` inside their own
transaction), so there is one answer to "may this version go live?".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

from pystator.fsm_core.errors import ConfigurationError, ConflictError
from pystator.fsm_core.loading import read_document
from pystator.fsm_core.machine import StateMachine
from pystator.stores.sql import compatibility_queries as queries
from pystator.stores.sql import registry_queries
from pystator.stores.sql.connections import autocommit
from pystator.stores.sql.engine import translate_errors

#: The kinds of problem a report names.
STATE_REMOVED = "state_removed"
TRANSITION_REMOVED = "transition_removed"
TRIGGER_REMOVED = "trigger_removed"
TIMER_ORPHANED = "timer_orphaned"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing the candidate would break, with its counts."""

    kind: str
    message: str
    blocking: bool
    state: str | None = None
    trigger: str | None = None
    timer_key: str | None = None
    entities: int = 0
    pending_events: int = 0
    armed_timers: int = 0
    mapped_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (None fields left out)."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "message": self.message,
            "blocking": self.blocking,
            "entities": self.entities,
            "pending_events": self.pending_events,
            "armed_timers": self.armed_timers,
        }
        for key in ("state", "trigger", "timer_key", "mapped_to"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveFleet:
    """What the fleet holds of one machine right now."""

    entities: Mapping[str, int]
    pending: tuple[queries.PendingGroup, ...] = ()
    timers: tuple[queries.TimerGroup, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CompatibilityReport:
    """The candidate against the current version and the live fleet of ``machine``."""

    machine: str
    current_version: int | None
    problems: tuple[Problem, ...]
    state_map: Mapping[str, str] = field(default_factory=dict)
    removed_states: tuple[str, ...] = ()
    added_states: tuple[str, ...] = ()
    entities: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing blocks publishing the candidate."""
        return not self.blocking

    @property
    def blocking(self) -> tuple[Problem, ...]:
        """The problems that refuse a publish."""
        return tuple(p for p in self.problems if p.blocking)

    @property
    def orphaned_timers(self) -> tuple[Problem, ...]:
        """The timer groups a publish cancels."""
        return tuple(p for p in self.problems if p.kind == TIMER_ORPHANED)

    def summary(self) -> str:
        """One line per problem (or "compatible")."""
        if not self.problems:
            return f"{self.machine}: compatible with the live fleet ({self.entities} entities)"
        lines = [f"{self.machine}: {len(self.blocking)} blocking of {len(self.problems)} problems"]
        lines += [f"  {'x' if p.blocking else '-'} {p.message}" for p in self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: what the API answers and ``--dry-run --json`` prints."""
        return {
            "machine": self.machine,
            "current_version": self.current_version,
            "ok": self.ok,
            "entities": self.entities,
            "removed_states": list(self.removed_states),
            "added_states": list(self.added_states),
            "state_map": dict(self.state_map),
            "problems": [p.to_dict() for p in self.problems],
        }


class IncompatibleVersionError(ConflictError):
    """Publishing would strand entities or pending events (HTTP 409); ``report`` says how."""

    def __init__(self, report: CompatibilityReport) -> None:
        blocking = report.blocking
        super().__init__(
            f"version refused: it would strand live work of {report.machine!r}: "
            + "; ".join(p.message for p in blocking)
            + (
                ". Map every removed state that has entities (old=new)"
                if any(p.kind == STATE_REMOVED for p in blocking)
                else ""
            ),
            details={"machine": report.machine, "report": report.to_dict()},
        )
        self.report = report


def read_live(conn: Connection, name: str) -> LiveFleet:
    """The live fleet of ``name`` (three grouped queries)."""
    return LiveFleet(
        entities=queries.entities_per_state(conn, name),
        pending=tuple(queries.pending_groups(conn, name)),
        timers=tuple(queries.timer_groups(conn, name)),
    )


def check_state_map(candidate: StateMachine, state_map: Mapping[str, str]) -> dict[str, str]:
    """``state_map`` as plain strings; :class:`ConfigurationError` when a target is not a state
    of the candidate."""
    checked: dict[str, str] = {}
    for old, new in state_map.items():
        if not isinstance(old, str) or not isinstance(new, str) or not old or not new:
            raise ConfigurationError(f"state map entry {old!r}: expected OLD=NEW state names")
        if not candidate.has_state(new):
            raise ConfigurationError(
                f"state map {old}={new}: the new version has no state {new!r}",
                details={"field": "state_map", "state": new},
            )
        checked[old] = new
    return checked


def _handles(machine: StateMachine, state: str, trigger: str) -> bool:
    try:
        return trigger in machine.allowed_triggers(state)
    except ConfigurationError:
        return False
    except Exception:  # an undefined state: nothing handles it
        return False


def assess(
    name: str,
    current: StateMachine | None,
    candidate: StateMachine,
    live: LiveFleet,
    *,
    state_map: Mapping[str, str] | None = None,
    current_version: int | None = None,
) -> CompatibilityReport:
    """The report of ``candidate`` against ``current`` (None: no stored version to compare
    transitions with) and ``live``. Pure."""
    mapping = check_state_map(candidate, state_map or {})
    problems: list[Problem] = []
    removed = sorted(s for s in live.entities if not candidate.has_state(s))
    for state in removed:
        count = live.entities[state]
        target = mapping.get(state)
        message = f"state {state!r} is removed and {count} entities are in it"
        problems.append(
            Problem(
                kind=STATE_REMOVED,
                message=message + (f" (mapped to {target!r})" if target else ""),
                blocking=target is None,
                state=state,
                entities=count,
                mapped_to=target,
            )
        )
    initial = candidate.get_initial_state()
    for group in live.pending:
        problems.extend(_pending_problem(current, candidate, group, mapping, initial))
    for timer in live.timers:
        if not any(
            t.key == timer.key and t.trigger == timer.trigger
            for t in _timers(candidate, mapping.get(timer.state, timer.state))
        ):
            problems.append(
                Problem(
                    kind=TIMER_ORPHANED,
                    message=(
                        f"{timer.count} armed timers ({timer.state!r} on {timer.trigger!r}) have "
                        "no transition in the new version: they are cancelled"
                    ),
                    blocking=False,
                    state=timer.state,
                    trigger=timer.trigger,
                    timer_key=timer.key,
                    armed_timers=timer.count,
                )
            )
    old_states = set(current.state_names) if current is not None else set(live.entities)
    return CompatibilityReport(
        machine=name,
        current_version=current_version,
        problems=tuple(problems),
        state_map=mapping,
        removed_states=tuple(sorted(s for s in old_states if not candidate.has_state(s))),
        added_states=tuple(s for s in candidate.state_names if s not in old_states),
        entities=sum(live.entities.values()),
    )


def _timers(machine: StateMachine, state: str) -> tuple[Any, ...]:
    try:
        return tuple(t for s in machine.active_states(state) for t in machine.timers_for_state(s))
    except Exception:  # not a state of this machine
        return ()


def _pending_problem(
    current: StateMachine | None,
    candidate: StateMachine,
    group: queries.PendingGroup,
    mapping: Mapping[str, str],
    initial: str,
) -> list[Problem]:
    if not candidate.has_trigger(group.trigger):
        if current is not None and not current.has_trigger(group.trigger):
            return []  # rejected before too: not this version's doing
        return [
            Problem(
                kind=TRIGGER_REMOVED,
                message=(
                    f"trigger {group.trigger!r} is removed and {group.count} pending events use it"
                ),
                blocking=True,
                trigger=group.trigger,
                state=group.state,
                pending_events=group.count,
            )
        ]
    if current is None:
        return []
    state = group.state
    before = state if state is not None else current.get_initial_state()
    after = mapping.get(state, state) if state is not None else initial
    if not _handles(current, before, group.trigger) or _handles(candidate, after, group.trigger):
        return []
    if state is not None and not candidate.has_state(after):
        return []  # the entity's state itself is the problem (reported once, above)
    return [
        Problem(
            kind=TRANSITION_REMOVED,
            message=(
                f"no transition from {after!r} on {group.trigger!r} any more and "
                f"{group.count} pending events need it"
            ),
            blocking=True,
            state=before,
            trigger=group.trigger,
            pending_events=group.count,
        )
    ]


def current_machine(conn: Connection, name: str) -> tuple[StateMachine | None, int | None]:
    """The current stored version of ``name`` compiled, and its number (None, None when there
    is none, or it is retired)."""
    record = registry_queries.get_machine(conn, name)
    if record is None or record.retired or record.current_version <= 0:
        return None, None
    row = registry_queries.get_version(conn, name, record.current_version)
    if row is None:
        return None, None
    try:
        machine = StateMachine.from_dict(dict(row.definition), source=f"registry:{name}")
    except Exception:  # a version a newer engine refuses: compare states only
        return None, record.current_version
    return machine, record.current_version


def compatibility_report(
    engine: Engine,
    name: str,
    candidate_config: Mapping[str, Any] | StateMachine,
    *,
    state_map: Mapping[str, str] | None = None,
) -> CompatibilityReport:
    """What publishing ``candidate_config`` as the next version of ``name`` would do to the
    live fleet (nothing is written). :class:`MachineValidationError` when the candidate is not
    a valid definition."""
    candidate = (
        candidate_config
        if isinstance(candidate_config, StateMachine)
        else StateMachine.from_dict(dict(candidate_config), source="<candidate>")
    )
    with translate_errors("compatibility"), autocommit(engine) as conn:
        current, version = current_machine(conn, name)
        live = read_live(conn, name)
    return assess(name, current, candidate, live, state_map=state_map, current_version=version)


def parse_state_map(items: Iterable[str]) -> dict[str, str]:
    """``["OLD=NEW", …]`` (CLI ``--map``) as a mapping; :class:`ConfigurationError` otherwise."""
    mapping: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ConfigurationError(f"--map {item!r}: expected OLD=NEW")
        mapping[old.strip()] = new.strip()
    return mapping


def load_state_map(path: str | Path) -> dict[str, str]:
    """A state map file: a YAML or JSON mapping ``OLD: NEW`` (``--map-file``)."""
    document = read_document(Path(path))
    if not isinstance(document, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in document.items()
    ):
        raise ConfigurationError(
            f"--map-file {str(path)!r}: expected a mapping of old state names to new ones, "
            f"got {json.dumps(document, default=str)[:80]}"
        )
    return dict(document)


__all__ = [
    "STATE_REMOVED",
    "TIMER_ORPHANED",
    "TRANSITION_REMOVED",
    "TRIGGER_REMOVED",
    "CompatibilityReport",
    "IncompatibleVersionError",
    "LiveFleet",
    "Problem",
    "assess",
    "check_state_map",
    "compatibility_report",
    "current_machine",
    "load_state_map",
    "parse_state_map",
    "read_live",
]
