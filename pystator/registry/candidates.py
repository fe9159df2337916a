"""Keep a discovered candidate as a version of its machine, never the current one.

Registering stores the candidate's definition beside the machine's versions (validated like any
publication; the same definition is stored once) and leaves the machine's current version, and
so the definition workers apply, untouched. Making it current is a separate, deliberate step
(publishing it, or promoting it after shadow mode).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.machine import StateMachine
from pystator.registry.versions import canonical, checksum, require_name
from pystator.stores.sql import registry_queries
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.engine import translate_errors


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered:
    """A candidate stored as ``version`` of machine ``name`` (``created``: False when that
    definition was stored already); ``current_version`` is the machine's, unchanged (0: the
    registry has no active version of it)."""

    name: str
    version: int
    created: bool
    current_version: int


def register_candidate(
    engine: Engine, config: Mapping[str, Any], *, by: str, clock: Clock = utc_now
) -> Registered:
    """Store ``config`` (a candidate's definition) as a version of its machine without making
    it current; :class:`MachineValidationError` when it is not a valid machine."""
    data = canonical(config)
    machine = StateMachine.from_dict(data, source="<candidate>")
    require_name(data)
    with translate_errors("machine registry"), transaction(engine) as conn:
        record = registry_queries.lock_machine(conn, machine.name, clock())
        version, created = registry_queries.add_inactive_version(
            conn,
            machine.name,
            definition=data,
            checksum=checksum(data),
            created_by=by,
            now=clock(),
        )
    current = 0 if record is None or record.retired else record.current_version
    return Registered(name=machine.name, version=version, created=created, current_version=current)


__all__ = ["Registered", "register_candidate"]
