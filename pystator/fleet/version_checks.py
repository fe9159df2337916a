"""A stored entity against the version of its machine this worker has: newer (retried until
the registry refreshes) or in a state the version does not define (dead, with the fix)."""

from __future__ import annotations

from pystator.fsm_core.errors import ConfigurationError, InvalidStateError, UndefinedStateError
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.records import EntityRecord


def behind(machine: StateMachine, record: EntityRecord | None) -> None:
    """Raise (a retried failure) when ``record`` was written with a newer version of the
    machine than this process has: it has not refreshed its registry since a publish (within
    ``PYSTATOR_REGISTRY_REFRESH_SECONDS``); the retry applies it with the new version."""
    have = machine.registry_version
    need = record.machine_version if record is not None else None
    if have is not None and need is not None and need > have:
        raise ConfigurationError(
            f"this worker has version {have} of {machine.name!r} and the entity is on version "
            f"{need}: retried once the registry refreshes"
        )


def mismatch(
    machine: StateMachine | None, record: EntityRecord | None, error: InvalidStateError
) -> InvalidStateError:
    """``error`` with a message that says what happened and what to do."""
    if machine is None or record is None:
        return error
    version = machine.registry_version
    which = f"version {version} of {machine.name!r}" if version else repr(machine.name)
    return UndefinedStateError(
        f"entity {record.entity_id!r} is in state {record.state!r}, which {which} does not "
        f"define ({error}); not retried: move the entity with a state map "
        f"(pystator machines sync DIR --map {record.state}=NEW)",
        state=record.state,
    )


__all__ = ["behind", "mismatch"]
