"""The documented import paths that only re-export: one table, module -> the names it exports.

pystator's public surface is documented by module (``from pystator.actions import …``,
``from pystator.worker import submit_event``, ``celery -A pystator.worker.app``), while the code
lives where it belongs (``fsm_core``, ``fleet``, ``plugins``, ``stores`` …). Every module below
is a shim: it imports exactly its row's names from the modules that define them (never from
another shim) and lists them in ``__all__``. A name that needs an optional dependency is in
:data:`LAZY` instead, with the module that defines it, and is imported on first access through
``__getattr__ = lazy_loader(__name__)``. A shim defines nothing else;
``tests/package/test_architecture.py`` holds each one to its row, and refuses any other module
at the top level of the package than these shims, :data:`REAL_TOP_LEVEL` and private helpers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

#: Documented module -> the names it exports (its ``__all__``, lazy names included).
_ROWS: dict[str, str] = {
    "pystator": (
        "ActionCall ActionExecutionError ActionExecutor ActionNotFoundError ActionPhase "
        "ActionRegistry ActionResult ActionSpec AsyncStateStore AsyncVersionedStateStore "
        "ConfigValidator ConfigurationError ContextValidationError ContextValidatorFn "
        "DefinitionDeprecationWarning DefinitionWarning DestinationCandidate "
        "DestinationCheckResult DwellTimeTracker EffectError EntityBusyError "
        "EntityNotFoundError EntitySession ErrorCode Event EventRecorder EventSink "
        "ExecutionMode ExecutionReport ExecutionResult FSMError FSMTimeoutError "
        "GuardEvaluationError GuardNotFoundError GuardRegistry GuardRejectedError GuardResult "
        "GuardSpec IdempotencyConflictError InMemoryStateStore InvalidEventError "
        "InvalidStateError InvalidTransitionError LintSeverity LintWarning LoggingHook "
        "MachineValidationError MetricSink MetricsCollector Orchestrator ParallelConfiguration "
        "ParallelStateConfig PostgresStateStore RecordedEvent RedisStateStore Region "
        "RetryPolicy SQLiteStateStore SchedulerError SettingsError StaleVersionError State "
        "StateMachine StateMachineBuilder StateStore StateType StoreError "
        "StoreUnavailableError StructuredLoggingHook TerminalStateError Timeout "
        "TimeoutExpiredError TimerSpec Transition TransitionContext TransitionHook "
        "TransitionMetrics TransitionObserver TransitionResult UndefinedStateError "
        "UndefinedTriggerError VersionedStateStore __version__ all_of any_of "
        "builtin_registries config configure_event_sink configure_metric_sink equals "
        "evaluate_check get_builtin_catalog greater_than in_list lint negate register_builtins "
        "validate_config validate_machine_config "
        # the definition pipeline, the asyncio timer backend and the runtime facade
        "AsyncioScheduler InMemoryMachineStore MachineDefinition MachineNotFoundError "
        "MachineStoreClient SQLAlchemyMachineStore build_machine build_machine_from_store "
        "parse_machine parse_machine_file EntitySnapshot MachineSession PyStatorRuntime "
        "QueueClient"
    ),
    "pystator.actions": (
        "ActionExecutor ActionOutcome ActionRegistry ActionResult CallStyle ExecutionMode "
        "ExecutionReport ExecutionResult RegisteredAction RetryPolicy"
    ),
    "pystator.behavior": (
        "ActionExecutor ActionRegistry ActionResult EventSink ExecutionMode GuardRegistry "
        "GuardResult MetricSink all_of any_of apply_effects configure_event_sink "
        "configure_metric_sink equals evaluate_check greater_than in_list negate"
    ),
    "pystator.builtins": (
        "BUILTIN_ACTIONS BUILTIN_GUARDS HTTP_ACTION CatalogEntry builtin_registries "
        "get_builtin_catalog register_builtins"
    ),
    "pystator.checks": "OPERATORS CheckError CheckSpec evaluate_check parse_check",
    "pystator.context": "ENTITY_ID_KEY EVENT_KEY TOKEN_KEY TransitionContext",
    "pystator.core": (
        "ActionSpec EntitySession Event GuardSpec Region State StateMachine StateType Timeout "
        "Transition TransitionResult"
    ),
    "pystator.effects": "EFFECT_KEYS Effect EffectKind apply_effect apply_effects parse_effect",
    "pystator.errors": (
        "ActionExecutionError ActionNotFoundError ConfigurationError ContextValidationError "
        "EffectError EntityBusyError EntityNotFoundError ErrorCode FSMError FSMTimeoutError "
        "GuardEvaluationError GuardNotFoundError GuardRejectedError IdempotencyConflictError "
        "InvalidEventError InvalidStateError InvalidTransitionError MachineValidationError "
        "SchedulerError SettingsError StaleVersionError StoreError StoreUnavailableError "
        "TerminalStateError TimeoutExpiredError UndefinedStateError UndefinedTriggerError"
    ),
    "pystator.guards": (
        "CompiledExpression ExpressionError ExpressionEvaluationError GuardRegistry "
        "GuardResult all_of any_of compile_expression equals greater_than in_list negate"
    ),
    "pystator.hooks": (
        "DwellTimeTracker LoggingHook MetricsCollector StructuredLoggingHook TransitionHook "
        "TransitionMetrics TransitionObserver entity_scope"
    ),
    "pystator.machine_builder": "MachineNotFoundError build_machine build_machine_from_store",
    "pystator.machine_parser": "MachineDefinition parse_machine parse_machine_file",
    "pystator.machine_store": "InMemoryMachineStore MachineStoreClient SQLAlchemyMachineStore",
    "pystator.http_action": ("DEFAULT_HTTP_TIMEOUT_SECONDS MAX_RESPONSE_BYTES http_action render"),
    "pystator.instance": "EntitySession EventRecorder RecordedEvent",
    "pystator.lint": "SEVERITY_ORDER LintSeverity LintWarning lint",
    "pystator.machine": "StateMachine StateMachineBuilder",
    "pystator.observability": (
        "DwellTimeTracker LintSeverity LintWarning LoggingHook MetricsCollector "
        "StructuredLoggingHook TransitionHook TransitionMetrics TransitionObserver "
        "get_statistics lint to_dot to_mermaid"
    ),
    "pystator.scheduler": (
        "AsyncioScheduler CeleryScheduler FireCallback RedisScheduler Scheduler"
    ),
    "pystator.sinks": (
        "EventSink LoggingEventSink LoggingMetricSink MetricSink configure_event_sink "
        "configure_metric_sink create_emit_metric_action create_publish_action"
    ),
    "pystator.migrations": (
        "BASE HEAD alembic_config current downgrade head history prepare_embedded upgrade"
    ),
    "pystator.worker": (
        "ClaimedEvent EventSpec EventStatus Producer Receipt Worker WorkerConfig WorkerEvent "
        "enqueue submit_event submit_event_sync submit_events"
    ),
    "pystator.worker.app": "app celery default_app make_worker_app",
}
SHIMS: dict[str, tuple[str, ...]] = {
    module: tuple(names.split()) for module, names in _ROWS.items()
}

#: Names of a shim that load on first access (optional dependencies) -> their defining module.
LAZY: dict[str, dict[str, str]] = {
    "pystator": {
        "PostgresStateStore": "pystator.stores.sql.documented_stores",
        "SQLiteStateStore": "pystator.stores.sql.documented_stores",
        "RedisStateStore": "pystator.stores.redis_store",
        "SQLAlchemyMachineStore": "pystator.registry.definition_store",
        "EntitySnapshot": "pystator.runtime",
        "MachineSession": "pystator.runtime",
        "PyStatorRuntime": "pystator.runtime",
        "QueueClient": "pystator.runtime",
    },
    "pystator.machine_store": {
        "SQLAlchemyMachineStore": "pystator.registry.definition_store",
    },
    "pystator.scheduler": {
        "CeleryScheduler": "pystator.schedulers.celery_scheduler",
        "RedisScheduler": "pystator.schedulers.redis_scheduler",
    },
    # the Celery app ``celery -A pystator.worker.app`` runs, built from the environment
    "pystator.worker.app": {"app": "pystator.fleet.app", "celery": "pystator.fleet.app"},
}

#: Top-level modules with real code: documented paths whose code lives there (DESIGN.md).
REAL_TOP_LEVEL = frozenset({"pystator.orchestrator", "pystator.cli"})


def lazy_loader(module: str, names: Mapping[str, str] | None = None) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``module``: the optional-dependency names it offers (``names``,
    by default its :data:`LAZY` row), each imported from its defining module on first use.
    The shims and the ``stores`` / ``schedulers`` packages load their optional names with it."""
    sources = LAZY[module] if names is None else names

    def load(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(importlib.import_module(source), name)

    return load


__all__ = ["LAZY", "REAL_TOP_LEVEL", "SHIMS", "lazy_loader"]
