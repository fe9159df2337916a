"""Machine definitions: validate, process, and the registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, StrictInt, StrictStr, model_validator

from pystator.api.schemas.common import Out, Strict


class ConfigIn(Strict):
    """A machine definition (the YAML document as JSON)."""

    config: dict[str, Any]


class SummaryOut(Out):
    """What a valid definition holds."""

    name: str
    version: str
    states: list[str]
    triggers: list[str]
    transitions: int
    timers: int
    initial_state: str


class ValidOut(Out):
    """A definition that passed validation."""

    valid: bool
    summary: SummaryOut


class ProcessIn(Strict):
    """A stateless transition: a definition (inline ``config``, or a stored ``machine`` at its
    current or a given ``version``), the current state, a trigger and a context."""

    config: dict[str, Any] | None = None
    machine: StrictStr | None = None
    version: StrictInt | None = Field(default=None, ge=1, le=2**31 - 1)
    current_state: StrictStr
    trigger: StrictStr
    context: dict[str, Any] = {}

    @model_validator(mode="after")
    def _one_definition(self) -> ProcessIn:
        if (self.config is None) == (self.machine is None):
            raise ValueError("give either 'config' or 'machine'")
        if self.version is not None and self.machine is None:
            raise ValueError("'version' goes with 'machine'")
        return self


class ProcessOut(Out):
    """The ``TransitionResult``: nothing is stored and no action runs."""

    success: bool
    source_state: str
    target_state: str | None
    trigger: str
    actions: list[dict[str, Any]]
    states_exited: list[str]
    states_entered: list[str]
    timers_to_arm: list[dict[str, Any]]
    timers_to_cancel: list[dict[str, Any]]
    error: dict[str, Any] | None
    metadata: dict[str, Any]
    context: dict[str, Any] | None  # after the transition's declarative effects, if any


class MachineOut(Out):
    """A stored machine."""

    name: str
    current_version: int
    retired_at: datetime | None
    created_at: datetime
    updated_at: datetime


class VersionOut(Out):
    """One stored version (without its definition)."""

    version: int
    checksum: str
    created_by: str
    created_at: datetime
    upgrade_policy: str = "auto"


class MachineDetailOut(MachineOut):
    """A stored machine with one version's definition and every version."""

    version: int
    definition: dict[str, Any]
    summary: SummaryOut
    versions: list[VersionOut]


class ProblemOut(Out):
    """One thing a candidate version would break, with its counts (``blocking``: it refuses
    the publish unless a state map covers it)."""

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


class CompatibilityOut(Out):
    """The compatibility report of a candidate against the current version and the live
    fleet."""

    machine: str
    current_version: int | None
    ok: bool
    entities: int
    removed_states: list[str]
    added_states: list[str]
    state_map: dict[str, str]
    problems: list[ProblemOut]


class MigrationOut(Out):
    """What a state map did: the entities moved and the timers cancelled."""

    moved: list[dict[str, Any]]
    cancelled_timers: int


class PublishedOut(Out):
    """The version a POST or PUT made current (``created`` False: it was identical, or a dry
    run: then ``report`` says what publishing would do and ``refused`` whether it would be)."""

    name: str
    version: int
    created: bool
    checksum: str
    upgrade_policy: str = "auto"
    dry_run: bool = False
    refused: bool = False
    report: CompatibilityOut | None = None
    migration: MigrationOut | None = None


__all__ = [
    "CompatibilityOut",
    "ConfigIn",
    "MachineDetailOut",
    "MachineOut",
    "MigrationOut",
    "ProblemOut",
    "ProcessIn",
    "ProcessOut",
    "PublishedOut",
    "SummaryOut",
    "ValidOut",
    "VersionOut",
]
