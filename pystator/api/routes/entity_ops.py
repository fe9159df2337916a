"""One entity over HTTP: ``/api/v1/entities/{entity_id}/…`` with the machine named by
``machine_name`` (in the body of a POST, as a query parameter of a GET).

``create`` stores the entity at its initial state (arming its timers in the same transaction,
then running its ``on_enter`` actions); ``events`` applies a trigger **now** through
the Orchestrator (persist, then run the actions in this process: ``action_results``) and answers
200 with ``success`` and a structured ``error_detail`` when the transition is refused;
``dry-run`` evaluates the same without storing, arming or running anything. ``state``,
``snapshot``, ``history``, ``timeline`` and ``export`` read; ``import`` restores an export,
``purge`` deletes, ``archive`` exports and deletes in one go (nothing is kept: the answered
document is the only copy). Queued events are
``POST /api/v1/events``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pystator.api.deps import Admin, AuditDep, Operator, PageLimit, ServicesDep, Viewer
from pystator.api.params import MACHINE_NAME_SCHEMA, Cursor, EntityIdPath
from pystator.api.schemas.common import PROBLEMS
from pystator.api.schemas.entity_ops import (
    ArchiveOut,
    DryRunOut,
    EntityCreatedOut,
    EntityCreateIn,
    EntityEventIn,
    EntitySnapshotOut,
    EntityStateOut,
    EventOutcomeOut,
    ExportedHistoryIn,
    ExportOut,
    HistoryPageOut,
    ImportIn,
    PurgeIn,
    PurgeOut,
    TimelineItemOut,
    TimelineOut,
)
from pystator.api.schemas.fleet import HistoryOut
from pystator.fleet import door
from pystator.fleet.composition import door_limits
from pystator.fsm_core.errors import InvalidEventError
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.records import EntityRecord
from pystator.services import admin, entities
from pystator.services.entities import ImportedHistory

router = APIRouter(prefix="/api/v1/entities", tags=["entities"], responses=PROBLEMS)

MachineQuery = Annotated[
    str,
    Query(description="the entity's machine", min_length=1, json_schema_extra=MACHINE_NAME_SCHEMA),
]
ID_LIMIT = door.Limits().max_entity_id_length


def checked_id(entity_id: object, field: str = "entity_id") -> str:
    """An entity id that passed the door (422 naming ``field`` otherwise)."""
    checked = door.check_name(field, entity_id, limit=ID_LIMIT)
    assert checked is not None
    return checked


def checked_key(machine_name: object, entity_id: object) -> tuple[str, str]:
    """``(machine_name, entity_id)`` of a read, through the door (a NUL byte or an overlong id
    is a 422 here, never a database error)."""
    machine = door.check_name("machine_name", machine_name, limit=door.Limits().max_trigger_length)
    assert machine is not None
    return machine, checked_id(entity_id)


def checked_context(services: ServicesDep, context: Any) -> dict[str, Any]:
    """A context within the door's depth and size limits (422 otherwise)."""
    return door.check_context(context, door_limits(services.settings)).value


def checked_trigger(trigger: object) -> str:
    """A trigger that passed the door."""
    checked = door.check_name("trigger", trigger, limit=door.Limits().max_trigger_length)
    assert checked is not None
    return checked


def machine_of(services: ServicesDep, name: str) -> StateMachine:
    """The machine called ``name`` (422 naming ``machine_name`` when unknown)."""
    checked = door.check_name("machine_name", name, limit=door.Limits().max_trigger_length)
    assert checked is not None
    return services.machines.get(checked)


def state_out(record: EntityRecord) -> dict[str, Any]:
    """The fields of :class:`EntityStateOut` / :class:`EntitySnapshotOut`."""
    return {
        "machine_name": record.machine,
        "entity_id": record.entity_id,
        "state": record.state,
        "version": record.version,
        "updated_at": record.updated_at,
        "context": dict(record.context),
        "entries": dict(record.entries),
        "created_at": record.created_at,
    }


@router.post("/{entity_id}/create", response_model=EntityCreatedOut, status_code=201)
def create_entity(
    entity_id: EntityIdPath,
    body: EntityCreateIn,
    services: ServicesDep,
    _operator: Operator,
    audit: AuditDep,
) -> dict[str, Any]:
    """Store a new entity at its machine's initial state, entered as a transition enters it
    (``on_enter`` effects in the stored context, its actions in ``action_results``); 409 when
    it exists, 422 when a ``when:`` or an effect of the entry fails (nothing stored)."""
    key = checked_id(entity_id)
    machine = machine_of(services, body.machine_name)
    context = checked_context(services, body.context)
    record, results = entities.create_reporting(services.engine, machine, key, context)
    audit.write(status=201, target=f"{machine.name}/{key}", affected=1)
    return {**state_out(record), "action_results": list(results)}


@router.post("/{entity_id}/events", response_model=EventOutcomeOut)
def send_event(
    entity_id: EntityIdPath,
    body: EntityEventIn,
    services: ServicesDep,
    _operator: Operator,
    audit: AuditDep,
) -> dict[str, Any]:
    """Apply ``trigger`` now: guards, persist, timers, then the actions run here and report in
    ``action_results``. A refused transition is 200 with ``success: false`` and
    ``error_detail``; 404 when the entity does not exist."""
    key = checked_id(entity_id)
    machine = machine_of(services, body.machine_name)
    outcome = entities.send_event(
        services.engine,
        machine,
        key,
        checked_trigger(body.trigger),
        checked_context(services, body.context),
    )
    audit.write(
        status=200,
        target=f"{machine.name}/{key}",
        selection={"trigger": body.trigger},
        affected=1 if outcome.success else 0,
    )
    return outcome.to_dict()


@router.post("/{entity_id}/dry-run", response_model=DryRunOut)
def dry_run(
    entity_id: EntityIdPath, body: EntityEventIn, services: ServicesDep, _viewer: Viewer
) -> dict[str, Any]:
    """What ``events`` would do (``would_succeed``, ``actions_that_would_execute``): nothing is
    stored, no timer is armed, no action runs."""
    machine = machine_of(services, body.machine_name)
    return entities.dry_run(
        services.engine,
        machine,
        checked_id(entity_id),
        checked_trigger(body.trigger),
        checked_context(services, body.context),
    ).to_dict()


@router.get("/{entity_id}/state", response_model=EntityStateOut)
def entity_state(
    entity_id: EntityIdPath, machine_name: MachineQuery, services: ServicesDep, _viewer: Viewer
) -> dict[str, Any]:
    """The entity's state and version."""
    return state_out(entities.load(services.engine, *checked_key(machine_name, entity_id)))


@router.get("/{entity_id}/snapshot", response_model=EntitySnapshotOut)
def entity_snapshot(
    entity_id: EntityIdPath, machine_name: MachineQuery, services: ServicesDep, _viewer: Viewer
) -> dict[str, Any]:
    """The stored record: state, context, version, state entries, times."""
    return state_out(entities.load(services.engine, *checked_key(machine_name, entity_id)))


@router.get("/{entity_id}/history", response_model=HistoryPageOut)
def entity_history(
    entity_id: EntityIdPath,
    machine_name: MachineQuery,
    services: ServicesDep,
    _viewer: Viewer,
    limit: PageLimit,
    before: Cursor = None,
) -> HistoryPageOut:
    """History rows, newest version first (404 when the entity has none)."""
    machine, key = checked_key(machine_name, entity_id)
    view = admin.entity_view(
        services.engine, machine, key, history_limit=limit, history_before=before
    )
    return HistoryPageOut(
        items=[HistoryOut.model_validate(admin.history_dict(h)) for h in reversed(view.history)],
        next_cursor=view.next_history_before,
        limit=limit,
    )


@router.get("/{entity_id}/timeline", response_model=TimelineOut)
def entity_timeline(
    entity_id: EntityIdPath,
    machine_name: MachineQuery,
    services: ServicesDep,
    _viewer: Viewer,
    limit: PageLimit,
) -> TimelineOut:
    """The newest ``limit`` transitions, then the pending events and the armed timers, in
    time order."""
    machine, key = checked_key(machine_name, entity_id)
    view = admin.entity_view(services.engine, machine, key, history_limit=limit)
    items = [
        TimelineItemOut(
            at=h.created_at,
            kind="transition",
            state=h.target_state,
            trigger=h.trigger,
            detail={"version": h.version, "from": h.source_state, "origin": h.origin},
        )
        for h in view.history
    ]
    items += [
        TimelineItemOut(
            at=e.fires_at,
            kind="pending_event",
            trigger=e.trigger,
            detail={"event_id": e.id, "attempts": e.attempts},
        )
        for e in view.pending
    ]
    items += [
        TimelineItemOut(
            at=t["due_at"],
            kind="timer",
            state=t["state"],
            trigger=t["trigger"],
            detail={"timer_id": t["timer_id"], "key": t["key"]},
        )
        for t in view.timers
    ]
    items.sort(key=lambda i: i.at)
    return TimelineOut(
        machine_name=machine_name,
        entity_id=entity_id,
        state=view.record.state if view.record else None,
        items=items,
    )


@router.get("/{entity_id}/export", response_model=ExportOut)
def export_entity(
    entity_id: EntityIdPath, machine_name: MachineQuery, services: ServicesDep, _viewer: Viewer
) -> dict[str, Any]:
    """The entity as a document (its newest 10,000 history rows) that ``import`` restores."""
    return entities.export(services.engine, *checked_key(machine_name, entity_id))


@router.post("/{entity_id}/import", response_model=EntitySnapshotOut, status_code=201)
def import_entity(
    entity_id: EntityIdPath, body: ImportIn, services: ServicesDep, _admin: Admin, audit: AuditDep
) -> dict[str, Any]:
    """Restore an exported entity as it was (state, context, version, history); 409 when it
    exists, 422 when the state is not the machine's."""
    key = checked_id(entity_id)
    machine = machine_of(services, body.machine_name)
    record = entities.import_entity(
        services.engine,
        machine,
        key,
        state=body.state,
        context=checked_context(services, body.context),
        version=body.version,
        entries=None if body.entries is None else _entries(body.entries),
        history=[_imported(services, i, h) for i, h in enumerate(body.history)],
    )
    audit.write(status=201, target=f"{machine.name}/{key}", affected=1)
    return state_out(record)


def _entries(entries: dict[str, int]) -> dict[str, int]:
    limit = door.Limits().max_trigger_length
    return {door.check_name("entries", k, limit=limit) or k: v for k, v in entries.items()}


def _imported(services: ServicesDep, index: int, row: ExportedHistoryIn) -> ImportedHistory:
    """One history row of an import, its names and payload through the door."""
    where = f"history[{index}]"

    def name(field: str, value: str | None, required: bool = False) -> str | None:
        return door.check_name(
            f"{where}.{field}", value, limit=door.Limits().max_trigger_length, required=required
        )

    payload = row.payload
    if payload is not None:
        try:
            payload = checked_context(services, payload)
        except InvalidEventError as exc:
            inner = str(exc.details.get("path", "context")).removeprefix("context")
            raise door.refuse(
                f"{where}.payload{inner}",
                str(exc.details.get("rule", "invalid")),
                exc.message.partition(": ")[2] or exc.message,
            ) from exc
    return ImportedHistory(
        version=row.version,
        from_state=name("source_state", row.source_state),
        to_state=name("target_state", row.target_state, required=True) or row.target_state,
        trigger=name("trigger", row.trigger),
        origin=name("origin", row.origin, required=True) or row.origin,
        actions=tuple(name("actions", a, required=True) or a for a in row.actions),
        payload=payload,
        at=row.created_at,
        event_id=row.event_id,
        machine_version=row.machine_version,
    )


@router.post("/{entity_id}/purge", response_model=PurgeOut)
def purge_entity(
    entity_id: EntityIdPath, body: PurgeIn, services: ServicesDep, _admin: Admin, audit: AuditDep
) -> PurgeOut:
    """Delete the entity, its history and its armed timers (409 while it has pending events or
    actions)."""
    deleted = entities.purge(services.engine, *checked_key(body.machine_name, entity_id))
    audit.write(status=200, target=f"{body.machine_name}/{entity_id}", affected=1)
    return PurgeOut(machine_name=body.machine_name, entity_id=entity_id, deleted=deleted)


@router.post("/{entity_id}/archive", response_model=ArchiveOut)
def archive_entity(
    entity_id: EntityIdPath, body: PurgeIn, services: ServicesDep, _admin: Admin, audit: AuditDep
) -> ArchiveOut:
    """Export the entity and purge it in one transaction; the answer holds the document."""
    archived = entities.archive(services.engine, *checked_key(body.machine_name, entity_id))
    audit.write(status=200, target=f"{body.machine_name}/{entity_id}", affected=1)
    return ArchiveOut(
        machine_name=body.machine_name,
        entity_id=entity_id,
        deleted=archived["deleted"],
        document=ExportOut.model_validate(archived["document"]),
    )


__all__ = [
    "checked_context",
    "checked_id",
    "checked_key",
    "checked_trigger",
    "machine_of",
    "router",
]
