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


class MachineDetailOut(MachineOut):
    """A stored machine with one version's definition and every version."""

    version: int
    definition: dict[str, Any]
    summary: SummaryOut
    versions: list[VersionOut]


class PublishedOut(Out):
    """The version a POST or PUT made current (``created`` False: it was identical)."""

    name: str
    version: int
    created: bool
    checksum: str


__all__ = [
    "ConfigIn",
    "MachineDetailOut",
    "MachineOut",
    "ProcessIn",
    "ProcessOut",
    "PublishedOut",
    "SummaryOut",
    "ValidOut",
    "VersionOut",
]
