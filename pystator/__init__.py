"""pystator: configuration-driven, stateless finite state machines and a durable worker fleet.

The documented top-level names (a shim: see :mod:`pystator._shims`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pystator import config
from pystator._shims import lazy_loader
from pystator._version import __version__
from pystator.fsm_core.actions import (
    ActionExecutor,
    ActionRegistry,
    ActionResult,
    ExecutionMode,
    ExecutionReport,
    ExecutionResult,
    RetryPolicy,
)
from pystator.fsm_core.builder import StateMachineBuilder
from pystator.fsm_core.checks import evaluate_check
from pystator.fsm_core.configuration import ParallelConfiguration, ParallelStateConfig
from pystator.fsm_core.context import TransitionContext
from pystator.fsm_core.definition import (
    ActionSpec,
    GuardSpec,
    Region,
    State,
    StateType,
    Timeout,
    Transition,
)
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
    TimeoutExpiredError,
    UndefinedStateError,
    UndefinedTriggerError,
)
from pystator.fsm_core.guard_helpers import (
    all_of,
    any_of,
    equals,
    greater_than,
    in_list,
    negate,
)
from pystator.fsm_core.guards import GuardRegistry, GuardResult
from pystator.fsm_core.hooks import (
    DwellTimeTracker,
    LoggingHook,
    MetricsCollector,
    StructuredLoggingHook,
    TransitionHook,
    TransitionMetrics,
    TransitionObserver,
)
from pystator.fsm_core.lint import LintSeverity, LintWarning, lint
from pystator.fsm_core.loading import ConfigValidator, validate_config, validate_machine_config
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.recording import EventRecorder, RecordedEvent
from pystator.fsm_core.records import Event
from pystator.fsm_core.results import (
    ActionCall,
    ActionPhase,
    DestinationCandidate,
    DestinationCheckResult,
    TimerSpec,
    TransitionResult,
)
from pystator.fsm_core.session import EntitySession
from pystator.fsm_core.sinks import (
    EventSink,
    MetricSink,
    configure_event_sink,
    configure_metric_sink,
)
from pystator.orchestrator import ContextValidatorFn, Orchestrator
from pystator.plugins.builtins import builtin_registries, get_builtin_catalog, register_builtins
from pystator.registry.definitions import (
    InMemoryMachineStore,
    MachineDefinition,
    MachineNotFoundError,
    MachineStoreClient,
    build_machine,
    build_machine_from_store,
    parse_machine,
    parse_machine_file,
)
from pystator.schedulers.asyncio_scheduler import AsyncioScheduler
from pystator.stores.base import (
    AsyncStateStore,
    AsyncVersionedStateStore,
    StateStore,
    VersionedStateStore,
)
from pystator.stores.memory import InMemoryStateStore

if TYPE_CHECKING:
    from pystator.registry.definition_store import SQLAlchemyMachineStore
    from pystator.runtime import EntitySnapshot, MachineSession, PyStatorRuntime, QueueClient
    from pystator.stores.redis_store import RedisStateStore
    from pystator.stores.sql.documented_stores import PostgresStateStore, SQLiteStateStore

__getattr__ = lazy_loader(__name__)

__all__ = [
    "ActionCall",
    "ActionExecutionError",
    "ActionExecutor",
    "ActionNotFoundError",
    "ActionPhase",
    "ActionRegistry",
    "ActionResult",
    "ActionSpec",
    "AsyncStateStore",
    "AsyncVersionedStateStore",
    "AsyncioScheduler",
    "ConfigValidator",
    "ConfigurationError",
    "ContextValidationError",
    "ContextValidatorFn",
    "DefinitionDeprecationWarning",
    "DefinitionWarning",
    "DestinationCandidate",
    "DestinationCheckResult",
    "DwellTimeTracker",
    "EffectError",
    "EntityBusyError",
    "EntityNotFoundError",
    "EntitySession",
    "EntitySnapshot",
    "ErrorCode",
    "Event",
    "EventRecorder",
    "EventSink",
    "ExecutionMode",
    "ExecutionReport",
    "ExecutionResult",
    "FSMError",
    "FSMTimeoutError",
    "GuardEvaluationError",
    "GuardNotFoundError",
    "GuardRegistry",
    "GuardRejectedError",
    "GuardResult",
    "GuardSpec",
    "IdempotencyConflictError",
    "InMemoryMachineStore",
    "InMemoryStateStore",
    "InvalidEventError",
    "InvalidStateError",
    "InvalidTransitionError",
    "LintSeverity",
    "LintWarning",
    "LoggingHook",
    "MachineDefinition",
    "MachineNotFoundError",
    "MachineSession",
    "MachineStoreClient",
    "MachineValidationError",
    "MetricSink",
    "MetricsCollector",
    "Orchestrator",
    "ParallelConfiguration",
    "ParallelStateConfig",
    "PostgresStateStore",
    "PyStatorRuntime",
    "QueueClient",
    "RecordedEvent",
    "RedisStateStore",
    "Region",
    "RetryPolicy",
    "SQLAlchemyMachineStore",
    "SQLiteStateStore",
    "SchedulerError",
    "SettingsError",
    "StaleVersionError",
    "State",
    "StateMachine",
    "StateMachineBuilder",
    "StateStore",
    "StateType",
    "StoreError",
    "StoreUnavailableError",
    "StructuredLoggingHook",
    "TerminalStateError",
    "Timeout",
    "TimeoutExpiredError",
    "TimerSpec",
    "Transition",
    "TransitionContext",
    "TransitionHook",
    "TransitionMetrics",
    "TransitionObserver",
    "TransitionResult",
    "UndefinedStateError",
    "UndefinedTriggerError",
    "VersionedStateStore",
    "__version__",
    "all_of",
    "any_of",
    "build_machine",
    "build_machine_from_store",
    "builtin_registries",
    "config",
    "configure_event_sink",
    "configure_metric_sink",
    "equals",
    "evaluate_check",
    "get_builtin_catalog",
    "greater_than",
    "in_list",
    "lint",
    "negate",
    "parse_machine",
    "parse_machine_file",
    "register_builtins",
    "validate_config",
    "validate_machine_config",
]
