"""Every name of the condensed API reference imports from the module it documents, and the
documented parameter names are accepted as keywords.

The table below is the reference's list (``reference-docs/api.md``), by documented module; a
dotted entry is an attribute of a class. The discovery names belong to their own issue.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

REFERENCE: dict[str, tuple[str, ...]] = {
    "pystator.machine_parser": ("MachineDefinition", "parse_machine", "parse_machine_file"),
    "pystator.machine_store": (
        "MachineStoreClient",
        "InMemoryMachineStore",
        "SQLAlchemyMachineStore",
    ),
    "pystator.machine_builder": (
        "build_machine",
        "build_machine_from_store",
        "MachineNotFoundError",
    ),
    "pystator": (
        # re-exported definition pipeline
        "MachineDefinition",
        "parse_machine",
        "parse_machine_file",
        "MachineStoreClient",
        "InMemoryMachineStore",
        "SQLAlchemyMachineStore",
        "build_machine",
        "build_machine_from_store",
        "MachineNotFoundError",
        # StateMachine
        "StateMachine.from_yaml",
        "StateMachine.from_dict",
        "StateMachine.validate_config",
        "StateMachine.process",
        "StateMachine.aprocess",
        "StateMachine.enter_parallel_state",
        "StateMachine.process_parallel",
        "StateMachine.aprocess_parallel",
        "StateMachine.get_parallel_exit_actions",
        "StateMachine.get_initial_state",
        "StateMachine.get_state",
        "StateMachine.get_available_transitions",
        "StateMachine.evaluate_destination",
        "StateMachine.can_transition_to",
        "StateMachine.is_parallel_state",
        "StateMachine.validate_parallel_config",
        "StateMachine.bind_guards",
        "StateMachine.name",
        "StateMachine.version",
        "StateMachine.state_names",
        "StateMachine.states",
        "StateMachine.transitions",
        "validate_config",
        "validate_machine_config",
        "ConfigValidator.validate",
        "TransitionResult.success",
        "TransitionResult.source_state",
        "TransitionResult.target_state",
        "TransitionResult.trigger",
        "TransitionResult.actions_to_execute",
        "TransitionResult.on_exit_actions",
        "TransitionResult.on_enter_actions",
        "TransitionResult.all_action_specs",
        "TransitionResult.all_actions",
        "TransitionResult.error",
        "TransitionResult.metadata",
        "DestinationCheckResult.allowed",
        "DestinationCheckResult.is_ambiguous",
        "DestinationCandidate",
        "GuardRegistry.register",
        "GuardRegistry.decorator",
        "ActionRegistry.register",
        "ActionRegistry.decorator",
        "ActionExecutor.execute",
        "ActionExecutor.async_execute_parallel",
        "ActionExecutor.async_execute_phased",
        "ActionExecutor.async_execute_with_mode",
        "ExecutionMode.SEQUENTIAL",
        "ExecutionMode.PARALLEL",
        "ExecutionMode.PHASED",
        "ParallelStateConfig.parallel_state",
        "ParallelStateConfig.region_states",
        "ParallelStateConfig.get_region_state",
        "ParallelStateConfig.is_in_state",
        "ParallelStateConfig.get_all_active",
        "ParallelStateConfig.to_string",
        "Orchestrator.process_event",
        "Orchestrator.async_process_event",
        "InMemoryStateStore",
        "AsyncioScheduler",
        "PyStatorRuntime",
        "FSMError",
        "ConfigurationError",
        "InvalidTransitionError",
        "GuardRejectedError",
        "UndefinedStateError",
        "UndefinedTriggerError",
        "TimeoutExpiredError",
        "GuardNotFoundError",
        "ActionNotFoundError",
    ),
    "pystator.scheduler": (
        "AsyncioScheduler",
        "RedisScheduler.start",
        "CeleryScheduler.register_task",
    ),
    "pystator.worker": (
        "Worker.start",
        "Worker.run",
        "Worker.shutdown",
        "WorkerConfig.resolve_dlq_database_url",
        "submit_event",
        "submit_event_sync",
        "WorkerEvent",
        "ClaimedEvent",
        "EventStatus",
    ),
    "pystator.errors": ("ErrorCode.GUARD_REJECTED", "ErrorCode.UNDEFINED_STATE"),
}

#: Documented parameter names: (module, dotted callable) -> parameters.
PARAMETERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("pystator", "StateMachine.from_yaml"): ("path",),
    ("pystator", "StateMachine.enter_parallel_state"): ("parallel_state_name",),
    ("pystator", "StateMachine.process_parallel"): ("config", "trigger", "context"),
    ("pystator", "StateMachine.aprocess_parallel"): ("config", "trigger", "context"),
    ("pystator", "StateMachine.get_available_transitions"): ("state_name",),
    ("pystator", "StateMachine.bind_guards"): ("guards",),
    ("pystator", "StateMachine.process"): ("current_state", "trigger", "context"),
    ("pystator", "StateMachine.evaluate_destination"): (
        "current_state",
        "destination_state",
        "context",
    ),
    ("pystator", "ParallelStateConfig.is_in_state"): ("state_name",),
    ("pystator", "GuardRegistry.register"): ("name", "fn"),
    ("pystator", "ActionRegistry.register"): ("name", "fn"),
}


def _resolve(module: str, dotted: str) -> object:
    found: object = importlib.import_module(module)
    for part in dotted.split("."):
        found = getattr(found, part)
    return found


@pytest.mark.parametrize(
    ("module", "dotted"), [(m, n) for m, names in REFERENCE.items() for n in names]
)
def test_every_reference_name_imports_from_its_documented_module(module: str, dotted: str) -> None:
    assert _resolve(module, dotted) is not None


@pytest.mark.parametrize(("where", "names"), list(PARAMETERS.items()))
def test_documented_parameter_names(where: tuple[str, str], names: tuple[str, ...]) -> None:
    parameters = inspect.signature(_resolve(*where)).parameters  # type: ignore[arg-type]
    assert [n for n in names if n not in parameters] == []


def test_the_definition_pipeline_is_one_model() -> None:
    from pystator import machine_builder, machine_parser, machine_store
    from pystator.fsm_core.definition import MachineDefinition

    assert machine_parser.MachineDefinition is MachineDefinition
    assert machine_builder.build_machine is importlib.import_module("pystator").build_machine
    assert machine_store.InMemoryMachineStore.__module__ == "pystator.registry.definitions"
