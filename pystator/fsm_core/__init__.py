"""The pure engine: definitions, validation, compilation, ``process`` and ``EntitySession``.

Imports nothing from the rest of pystator and does no I/O beyond reading a definition file
when asked to (``StateMachine.from_yaml``). Only PyYAML is required.
"""

from pystator.fsm_core.configuration import ParallelConfiguration
from pystator.fsm_core.definition import MachineDefinition, StateKind, TransitionSpec
from pystator.fsm_core.errors import ErrorCode, FSMError, MachineValidationError
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.results import ActionCall, ActionPhase, TimerSpec, TransitionResult
from pystator.fsm_core.session import EntitySession

__all__ = [
    "ActionCall",
    "ActionPhase",
    "EntitySession",
    "ErrorCode",
    "FSMError",
    "MachineDefinition",
    "MachineValidationError",
    "ParallelConfiguration",
    "StateKind",
    "StateMachine",
    "TimerSpec",
    "TransitionResult",
    "TransitionSpec",
]
