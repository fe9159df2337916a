"""pystator: configuration-driven, stateless finite state machines and a durable worker fleet."""

from __future__ import annotations

from pystator.fsm_core.actions import ActionExecutor, ActionRegistry, ExecutionReport, RetryPolicy
from pystator.fsm_core.configuration import ParallelConfiguration
from pystator.fsm_core.errors import (
    ActionExecutionError,
    ActionNotFoundError,
    ConfigurationError,
    ContextValidationError,
    EntityBusyError,
    EntityNotFoundError,
    ErrorCode,
    FSMError,
    FSMTimeoutError,
    GuardEvaluationError,
    GuardNotFoundError,
    GuardRejectedError,
    IdempotencyConflictError,
    InvalidEventError,
    InvalidStateError,
    InvalidTransitionError,
    MachineValidationError,
    SchedulerError,
    SettingsError,
    StaleVersionError,
    StoreError,
    StoreUnavailableError,
    TerminalStateError,
    UndefinedStateError,
    UndefinedTriggerError,
)
from pystator.fsm_core.guards import GuardRegistry
from pystator.fsm_core.hooks import (
    LoggingHook,
    MetricsCollector,
    TransitionHook,
    TransitionObserver,
)
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.results import ActionCall, ActionPhase, TimerSpec, TransitionResult
from pystator.fsm_core.session import EntitySession
from pystator.orchestrator import ContextValidatorFn, Orchestrator
from pystator.stores.base import AsyncStateStore, StateStore
from pystator.stores.memory import InMemoryStateStore

__version__ = "0.1.0"

__all__ = [
    "ActionCall",
    "ActionExecutionError",
    "ActionExecutor",
    "ActionNotFoundError",
    "ActionPhase",
    "ActionRegistry",
    "AsyncStateStore",
    "ConfigurationError",
    "ContextValidationError",
    "ContextValidatorFn",
    "EntityBusyError",
    "EntityNotFoundError",
    "EntitySession",
    "ErrorCode",
    "ExecutionReport",
    "FSMError",
    "FSMTimeoutError",
    "GuardEvaluationError",
    "GuardNotFoundError",
    "GuardRegistry",
    "GuardRejectedError",
    "IdempotencyConflictError",
    "InMemoryStateStore",
    "InvalidEventError",
    "InvalidStateError",
    "InvalidTransitionError",
    "LoggingHook",
    "MachineValidationError",
    "MetricsCollector",
    "Orchestrator",
    "ParallelConfiguration",
    "RetryPolicy",
    "SchedulerError",
    "SettingsError",
    "StaleVersionError",
    "StateMachine",
    "StateStore",
    "StoreError",
    "StoreUnavailableError",
    "TerminalStateError",
    "TimerSpec",
    "TransitionHook",
    "TransitionObserver",
    "TransitionResult",
    "UndefinedStateError",
    "UndefinedTriggerError",
    "__version__",
]
