"""Shadow mode: attach a candidate definition to a machine, read its comparison, stop, promote.

The API's ``/api/v1/discovery/shadow/{machine_name}`` routes, the dashboard's machine page and
the tests call these. Workers evaluate the active shadow (:mod:`pystator.fleet.shadow`) on a
``sample_rate`` of the machine's events; **promote** publishes the candidate as the machine's
next registry version (the registry's publish path and its checks) and ends the shadow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.divergence import ACCEPTED, ERROR, KINDS, REJECTED, TARGET
from pystator.fsm_core.errors import ConfigurationError, ConflictError, NotFoundError
from pystator.registry import versions
from pystator.registry.versions import Published
from pystator.services.replay import candidate_machine
from pystator.stores.sql import history_queries, shadow_queries
from pystator.stores.sql.audit_queries import Actor
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.shadow_queries import DiffGroup, ShadowRow


@dataclass(frozen=True, slots=True, kw_only=True)
class ShadowView:
    """A machine's shadow (the active one, else the latest) with its difference groups."""

    shadow: ShadowRow
    diffs: tuple[DiffGroup, ...]

    @property
    def match_rate(self) -> float | None:
        """Matched over compared (None before the first comparison)."""
        total = self.shadow.matched + self.shadow.mismatched
        return None if total == 0 else self.shadow.matched / total

    def to_dict(self) -> dict[str, Any]:
        """As JSON data (the route's body)."""
        row = self.shadow
        meta = row.definition.get("meta")
        return {
            "id": row.id,
            "machine": row.machine,
            "status": row.status,
            "sample_rate": row.sample_rate,
            "matched": row.matched,
            "mismatched": row.mismatched,
            "match_rate": self.match_rate,
            "created_by": row.created_by,
            "created_at": row.created_at,
            "ended_at": row.ended_at,
            "promoted_version": row.promoted_version,
            "candidate_version": str(meta.get("version")) if isinstance(meta, Mapping) else None,
            "diffs": [
                {
                    "state": d.source_state,
                    "trigger": d.trigger,
                    "active_target": d.active_target or None,
                    "shadow_target": d.shadow_target or None,
                    "kind": d.kind,
                    "count": d.count,
                    "examples": d.examples,
                    "first_seen": d.first_seen,
                    "last_seen": d.last_seen,
                }
                for d in self.diffs
            ],
        }


def start_shadow(
    engine: Engine,
    machine: str,
    config: Mapping[str, Any],
    *,
    sample_rate: float,
    by: str,
    clock: Clock = utc_now,
) -> ShadowView:
    """Attach ``config`` as ``machine``'s shadow; :class:`ConflictError` while one is active,
    :class:`NotFoundError` when the registry has no such machine."""
    if not 0.0 < sample_rate <= 1.0:
        raise ConfigurationError(f"sample_rate must be in (0, 1], not {sample_rate}")
    candidate_machine(config, machine=machine)  # validates it and checks its name
    versions.show_machine(engine, machine)  # a stored machine (NotFoundError otherwise)
    data = versions.canonical(config)
    with translate_errors("shadows"), transaction(engine) as conn:
        active = shadow_queries.lock_active(conn, machine)
        if active is not None:
            raise ConflictError(
                f"machine {machine!r} already has an active shadow ({active.id}): stop it first",
                details={"machine": machine, "shadow": active.id},
            )
        shadow_queries.insert_shadow(
            conn,
            machine=machine,
            definition=data,
            checksum=versions.checksum(data),
            sample_rate=sample_rate,
            by=by,
            now=clock(),
        )
    return show_shadow(engine, machine)


def show_shadow(engine: Engine, machine: str) -> ShadowView:
    """The machine's active shadow (else its latest); :class:`NotFoundError` when none."""
    with translate_errors("shadows"), engine.connect() as conn:
        row = shadow_queries.latest_shadow(conn, machine)
        diffs = shadow_queries.diff_groups(conn, row.id) if row is not None else []
    if row is None:
        raise NotFoundError(f"machine {machine!r} has no shadow", details={"machine": machine})
    return ShadowView(shadow=row, diffs=tuple(diffs))


def stop_shadow(engine: Engine, machine: str, *, clock: Clock = utc_now) -> ShadowView:
    """End the machine's active shadow (its counts and groups are kept until retention)."""
    with translate_errors("shadows"), transaction(engine) as conn:
        active = _active(conn, machine)
        shadow_queries.end_shadow(conn, active.id, shadow_queries.STOPPED, clock())
    return show_shadow(engine, machine)


def promote_shadow(
    engine: Engine,
    machine: str,
    *,
    by: Actor,
    state_map: Mapping[str, str] | None = None,
    upgrade_policy: str | None = None,
    clock: Clock = utc_now,
) -> tuple[ShadowView, Published]:
    """Publish the active shadow's candidate as ``machine``'s next version, then mark the
    shadow promoted. It goes through the registry's publish path and its compatibility check:
    a candidate that would strand live entities raises
    :class:`~pystator.registry.compatibility.IncompatibleVersionError` (409, the shadow stays
    active) unless ``state_map`` says where they go. The publish is audited as ``by``'s
    (``machine.published``, in the publish's transaction)."""
    with translate_errors("shadows"), engine.connect() as conn:
        active = _active(conn, machine)
    published = versions.publish(
        engine,
        active.definition,
        by=by,
        name=machine,
        clock=clock,
        state_map=state_map,
        upgrade_policy=upgrade_policy,
    )
    with translate_errors("shadows"), transaction(engine) as conn:
        shadow_queries.end_shadow(
            conn, active.id, shadow_queries.PROMOTED, clock(), promoted_version=published.version
        )
    return show_shadow(engine, machine), published


#: Which difference an example timeline shows first: another target says the most.
_EXAMPLE_ORDER = defaultdict(
    lambda: len(KINDS), {kind: n for n, kind in enumerate((TARGET, REJECTED, ACCEPTED, ERROR))}
)


def find_shadow(engine: Engine, machine: str) -> ShadowView | None:
    """:func:`show_shadow`, or None when the machine never had one."""
    try:
        return show_shadow(engine, machine)
    except NotFoundError:
        return None


def example_timeline(engine: Engine, machine: str, view: ShadowView) -> dict[str, Any] | None:
    """The recorded timeline of one example entity (of another target first, then a
    rejection, an acceptance, an error, other actions), with both decisions on the event that
    differed (None when there is no example)."""
    shown = sorted((d for d in view.diffs if d.examples), key=lambda d: _EXAMPLE_ORDER[d.kind])
    example = shown[0] if shown else None
    if example is None:
        return None
    first = example.examples[0]
    entity_id = str(first.get("entity_id"))
    with translate_errors("transition history"), engine.connect() as conn:
        history = history_queries.load_history(conn, machine, entity_id)
    steps = [
        {
            "version": h.version,
            "source": h.source_state,
            "trigger": h.trigger,
            "target": h.target_state,
            "event_id": h.event_id,
            "differs": h.event_id is not None and h.event_id == first.get("event_id"),
        }
        for h in history
    ]
    return {
        "entity_id": entity_id,
        "event_id": first.get("event_id"),
        "state": example.source_state,
        "trigger": example.trigger,
        "active": example.active_target or None,
        "shadow": example.shadow_target or None,
        "kind": example.kind,
        "steps": steps,
    }


def _active(conn: Any, machine: str) -> ShadowRow:
    active = shadow_queries.lock_active(conn, machine)
    if active is None:
        raise NotFoundError(
            f"machine {machine!r} has no active shadow", details={"machine": machine}
        )
    return active


__all__ = [
    "ShadowView",
    "example_timeline",
    "find_shadow",
    "promote_shadow",
    "show_shadow",
    "start_shadow",
    "stop_shadow",
]
