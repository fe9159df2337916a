"""The pure engine: definitions, validation, compilation, ``process`` and ``EntitySession``.

Imports nothing from the rest of pystator and does no I/O beyond reading a definition file
when asked to (``StateMachine.from_yaml``). Only PyYAML is required.
"""

from pystator.fsm_core.apply_data import (
    ApplyDataResult,
    Route,
    RouteAttempt,
    aapply_data,
    apply_data,
)
from pystator.fsm_core.builder import StateMachineBuilder
from pystator.fsm_core.builtins import builtin_catalog
from pystator.fsm_core.checks import CheckSpec, evaluate_check
from pystator.fsm_core.configuration import ParallelConfiguration
from pystator.fsm_core.context import TransitionContext
from pystator.fsm_core.definition import (
    ErrorPolicy,
    FallbackMode,
    MachineDefinition,
    StateKind,
    TransitionSpec,
)
from pystator.fsm_core.effects import Effect, EffectKind, apply_effects
from pystator.fsm_core.error_policy import FailureDecision, decide_failure, on_invalid_event
from pystator.fsm_core.errors import (
    DefinitionDeprecationWarning,
    DefinitionWarning,
    EffectError,
    ErrorCode,
    FSMError,
    MachineValidationError,
)
from pystator.fsm_core.lint import LintSeverity, LintWarning, lint
from pystator.fsm_core.loading import ConfigValidator, validate_config
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.results import ActionCall, ActionPhase, TimerSpec, TransitionResult
from pystator.fsm_core.session import EntitySession
from pystator.fsm_core.sinks import (
    EventSink,
    LoggingEventSink,
    LoggingMetricSink,
    MetricSink,
    configure_event_sink,
    configure_metric_sink,
)
from pystator.fsm_core.step import fallback_step

__all__ = [
    "ActionCall",
    "ActionPhase",
    "ApplyDataResult",
    "CheckSpec",
    "ConfigValidator",
    "DefinitionDeprecationWarning",
    "DefinitionWarning",
    "Effect",
    "EffectError",
    "EffectKind",
    "EntitySession",
    "ErrorCode",
    "ErrorPolicy",
    "EventSink",
    "FSMError",
    "FailureDecision",
    "FallbackMode",
    "LintSeverity",
    "LintWarning",
    "LoggingEventSink",
    "LoggingMetricSink",
    "MachineDefinition",
    "MachineValidationError",
    "MetricSink",
    "ParallelConfiguration",
    "Route",
    "RouteAttempt",
    "StateKind",
    "StateMachine",
    "StateMachineBuilder",
    "TimerSpec",
    "TransitionContext",
    "TransitionResult",
    "TransitionSpec",
    "aapply_data",
    "apply_data",
    "apply_effects",
    "builtin_catalog",
    "configure_event_sink",
    "configure_metric_sink",
    "decide_failure",
    "evaluate_check",
    "fallback_step",
    "lint",
    "on_invalid_event",
    "validate_config",
]
