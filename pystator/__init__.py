"""pystator: configuration-driven, stateless finite state machines and a durable worker fleet."""

from __future__ import annotations

from pystator.builtins import builtin_registries, get_builtin_catalog, register_builtins
from pystator.fsm_core.actions import ActionExecutor, ActionRegistry, ExecutionReport, RetryPolicy
from pystator.fsm_core.builder import StateMachineBuilder
from pystator.fsm_core.checks import evaluate_check
from pystator.fsm_core.configuration import ParallelConfiguration
from pystator.fsm_core.context import TransitionContext
from pystator.fsm_core.errors import (
    ActionExecutionError,
    ActionNotFoundError,
    ConfigurationError,
    ContextValidationError,
    DefinitionDeprecationWarning,
    DefinitionWarning,
    EffectError,
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
from pystator.fsm_core.lint import LintSeverity, LintWarning, lint
from pystator.fsm_core.loading import ConfigValidator, validate_config
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.results import ActionCall, ActionPhase, TimerSpec, TransitionResult
from pystator.fsm_core.session import EntitySession
from pystator.fsm_core.sinks import (
    EventSink,
    MetricSink,
    configure_event_sink,
    configure_metric_sink,
)
from pystator.orchestrator import ContextValidatorFn, Orchestrator
from pystator.stores.base import AsyncStateStore, StateStore
from pystator.stores.memory import InMemoryStateStore

__version__ = "0.1.0"

#: Alias kept from the documented API.
validate_machine_config = validate_config

__all__ = [
    "ActionCall",
    "ActionExecutionError",
    "ActionExecutor",
    "ActionNotFoundError",
    "ActionPhase",
    "ActionRegistry",
    "AsyncStateStore",
    "ConfigValidator",
    "ConfigurationError",
    "ContextValidationError",
    "ContextValidatorFn",
    "DefinitionDeprecationWarning",
    "DefinitionWarning",
    "EffectError",
    "EntityBusyError",
    "EntityNotFoundError",
    "EntitySession",
    "ErrorCode",
    "EventSink",
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
    "LintSeverity",
    "LintWarning",
    "LoggingHook",
    "MachineValidationError",
    "MetricSink",
    "MetricsCollector",
    "Orchestrator",
    "ParallelConfiguration",
    "RetryPolicy",
    "SchedulerError",
    "SettingsError",
    "StaleVersionError",
    "StateMachine",
    "StateMachineBuilder",
    "StateStore",
    "StoreError",
    "StoreUnavailableError",
    "TerminalStateError",
    "TimerSpec",
    "TransitionContext",
    "TransitionHook",
    "TransitionObserver",
    "TransitionResult",
    "UndefinedStateError",
    "UndefinedTriggerError",
    "__version__",
    "builtin_registries",
    "configure_event_sink",
    "configure_metric_sink",
    "evaluate_check",
    "get_builtin_catalog",
    "lint",
    "register_builtins",
    "validate_config",
    "validate_machine_config",
]
