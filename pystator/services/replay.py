"""Replay testing: re-run a machine's recorded history through a candidate definition.

Each recorded transition is re-decided by the candidate from its recorded source state with
the context its guards saw when it was applied (``transition_history.guard_context``), entity by
entity, oldest version first. The engine is pure, so a candidate identical to the version that
applied the history matches every transition. The report counts per (state, trigger):

- **matched**: same target state and the same planned actions;
- **diverged**: ``target`` (another state), ``rejected`` (no longer allowed), ``actions``
  (same target, other actions) or ``error`` (the candidate raised);
- **skipped**: ``guard_input_not_recorded`` (a row written before guard contexts were
  recorded) or ``history_pruned`` (such a row whose predecessor retention has deleted).

Every bucket keeps one example (entity id, event id, entity version). Divergences listed in an
*allow* document (``pystator replay --allow FILE``) are reported as allowed and do not fail.
Nothing here writes anything, runs an action or arms a timer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.divergence import ERROR, divergence
from pystator.fsm_core.errors import ConfigurationError, ConflictError
from pystator.fsm_core.machine import StateMachine
from pystator.registry.stored import Binder
from pystator.registry.versions import canonical
from pystator.stores.sql import replay_queries
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.replay_queries import RecordedStep

MATCHED = "matched"
NOT_RECORDED = "guard_input_not_recorded"
PRUNED = "history_pruned"
#: Origins of rows that were decisions of the machine (not creates, imports or migrations).
DECIDED_ORIGINS = frozenset({"direct", "event", "timer", "replay"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayFilter:
    """Which history to replay: rows since ``since``, a deterministic ``sample`` of the
    entities (0 < rate <= 1), at most ``entities`` of them."""

    since: datetime | None = None
    entities: int | None = None
    sample: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.sample <= 1.0:
            raise ConfigurationError(f"sample must be in (0, 1], not {self.sample}")
        if self.entities is not None and self.entities < 1:
            raise ConfigurationError(f"entities must be at least 1, not {self.entities}")


@dataclass(frozen=True, slots=True)
class Allowance:
    """An accepted divergence: ``state``/``trigger`` (``*`` for any), ``kind`` (None: any)."""

    state: str = "*"
    trigger: str = "*"
    kind: str | None = None

    def covers(self, state: str, trigger: str, kind: str) -> bool:
        """True when a divergence of ``kind`` at (``state``, ``trigger``) is accepted."""
        return (
            self.state in ("*", state)
            and self.trigger in ("*", trigger)
            and self.kind in (None, kind)
        )


def parse_allowances(document: Any) -> tuple[Allowance, ...]:
    """The allow document: a list (or ``{"allow": [...]}``) of ``{state, trigger, kind}``."""
    items = document.get("allow") if isinstance(document, Mapping) else document
    if not isinstance(items, list):
        raise ConfigurationError("the allow document must be a list of {state, trigger, kind}")
    allowed = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not set(item) <= {"state", "trigger", "kind"}:
            raise ConfigurationError(
                f"allow[{index}]: expected a mapping with state, trigger and/or kind"
            )
        values = {k: str(v) for k, v in item.items()}
        allowed.append(Allowance(**values))
    return tuple(allowed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """One transition of a bucket: where to look."""

    entity_id: str
    event_id: int | None
    version: int
    recorded: str | None = None  # the recorded target
    candidate: str | None = None  # what the candidate decided (None: rejected or raised)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As JSON data."""
        data: dict[str, Any] = {
            "entity_id": self.entity_id,
            "event_id": self.event_id,
            "version": self.version,
            "recorded": self.recorded,
            "candidate": self.candidate,
        }
        if self.error:
            data["error"] = self.error
        return data


@dataclass(slots=True)
class ReplayGroup:
    """What happened to the recorded transitions of one (state, trigger)."""

    state: str
    trigger: str
    matched: int = 0
    diverged: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    allowed: dict[str, int] = field(default_factory=dict)
    examples: dict[str, Example] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As JSON data."""
        return {
            "state": self.state,
            "trigger": self.trigger,
            "matched": self.matched,
            "diverged": dict(self.diverged),
            "allowed": dict(self.allowed),
            "skipped": dict(self.skipped),
            "examples": {k: e.to_dict() for k, e in self.examples.items()},
        }


@dataclass(slots=True)
class ReplayReport:
    """The outcome of a replay; ``ok`` is False when any divergence is not allowed."""

    machine: str
    entities: int = 0
    transitions: int = 0
    matched: int = 0
    diverged: int = 0
    allowed: int = 0
    skipped: int = 0
    groups: dict[tuple[str, str], ReplayGroup] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing diverged (allowed divergences aside)."""
        return self.diverged == 0

    def to_dict(self) -> dict[str, Any]:
        """As JSON data (groups by state, then trigger)."""
        return {
            "machine": self.machine,
            "ok": self.ok,
            "entities": self.entities,
            "transitions": self.transitions,
            "matched": self.matched,
            "diverged": self.diverged,
            "allowed": self.allowed,
            "skipped": self.skipped,
            "groups": [self.groups[k].to_dict() for k in sorted(self.groups)],
        }


def replay_steps(
    candidate: StateMachine,
    steps: Iterable[RecordedStep],
    *,
    machine: str | None = None,
    allow: Sequence[Allowance] = (),
) -> ReplayReport:
    """Re-decide every recorded step with ``candidate`` (pure: no I/O, nothing runs)."""
    report = ReplayReport(machine=machine or candidate.name)
    groups = report.groups
    process = candidate.process
    initial = candidate.get_initial_state()
    last_entity: str | None = None
    last_version = 0
    for step in steps:
        entity_id, version, source, target, trigger, _event, origin, actions, context = step
        previous = last_version if entity_id == last_entity else None
        if entity_id != last_entity:
            report.entities += 1
            last_entity = entity_id
        last_version = version
        if trigger is None or origin not in DECIDED_ORIGINS or trigger.startswith("__"):
            continue
        state = source if source is not None else initial
        key = (state, trigger)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ReplayGroup(state=state, trigger=trigger)
        report.transitions += 1
        if context is None:
            pruned = version > 1 and previous != version - 1
            reason = PRUNED if pruned else NOT_RECORDED
            group.skipped[reason] = group.skipped.get(reason, 0) + 1
            report.skipped += 1
            if reason not in group.examples:
                group.examples[reason] = Example(
                    entity_id=entity_id, event_id=step.event_id, version=version, recorded=target
                )
            continue
        error: str | None = None
        try:
            result = process(state, trigger, context)
            kind = divergence(target, actions, result)
        except Exception as exc:  # the candidate raised: a divergence of its own kind
            kind, result, error = ERROR, None, f"{type(exc).__name__}: {exc}"
        if kind is None:
            group.matched += 1
            report.matched += 1
            if MATCHED not in group.examples:
                group.examples[MATCHED] = Example(
                    entity_id=entity_id, event_id=step.event_id, version=version, recorded=target
                )
            continue
        bucket = group.diverged
        if any(a.covers(state, trigger, kind) for a in allow):
            bucket = group.allowed
            report.allowed += 1
        else:
            report.diverged += 1
        bucket[kind] = bucket.get(kind, 0) + 1
        if kind not in group.examples:
            moved = result is not None and result.success
            group.examples[kind] = Example(
                entity_id=entity_id,
                event_id=step.event_id,
                version=version,
                recorded=target,
                candidate=result.target_state if moved and result is not None else None,
                error=error or _reason(result),
            )
    return report


def _reason(result: Any) -> str | None:
    if result is None or result.success:
        return None
    reason = result.metadata.get("reason") if result.metadata else None
    return str(reason) if reason else None


def candidate_machine(
    config: Mapping[str, Any],
    *,
    machine: str,
    bind: Binder | None = None,
    source: str = "<candidate>",
) -> StateMachine:
    """The candidate definition validated and compiled (``bind`` attaches the process's guards
    and actions); :class:`ConflictError` when it names another machine."""
    compiled = StateMachine.from_dict(canonical(config), source=source)
    if compiled.name != machine:
        raise ConflictError(
            f"the candidate's meta.machine_name is {compiled.name!r}, not {machine!r}",
            details={"field": "meta.machine_name", "machine": machine},
        )
    if bind is not None:
        bind(compiled)
    return compiled


def replay(
    engine: Engine,
    machine: str,
    candidate: StateMachine,
    *,
    selection: ReplayFilter | None = None,
    allow: Sequence[Allowance] = (),
) -> ReplayReport:
    """Replay ``machine``'s recorded history (``selection`` of it) through ``candidate``."""
    chosen = selection or ReplayFilter()
    with translate_errors("transition history"), engine.connect() as conn:
        ids = replay_queries.entity_ids(
            conn, machine, since=chosen.since, sample=chosen.sample, limit=chosen.entities
        )
        steps = replay_queries.recorded_steps(conn, machine, ids, since=chosen.since)
        return replay_steps(candidate, steps, machine=machine, allow=allow)


__all__ = [
    "DECIDED_ORIGINS",
    "MATCHED",
    "NOT_RECORDED",
    "PRUNED",
    "Allowance",
    "Example",
    "ReplayFilter",
    "ReplayGroup",
    "ReplayReport",
    "candidate_machine",
    "parse_allowances",
    "replay",
    "replay_steps",
]
