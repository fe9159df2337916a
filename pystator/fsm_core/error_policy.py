"""What a machine's ``error_policy`` decides, as pure functions every caller shares.

* **Invalid events** (an unknown trigger, or no transition from the current state — not a guard
  rejection, not a terminal state): under ``meta.orchestrator_default_fallback: hint`` the failed
  result names the fallback state; under ``persist`` the entity moves to
  ``error_policy.default_fallback`` and the result is a success whose metadata keeps the original
  error. ``off`` (the default) changes nothing. Plain ``StateMachine.process`` never does this: the
  step shared by the Orchestrator and the worker fleet does (:func:`on_invalid_event`).
* **Failures** (a guard or an ``expr:``/``check:`` raising, an effect or an action failing): the
  attempt is retried up to ``error_policy.retry_attempts`` times; when the last attempt fails and
  the mode is ``persist``, the entity moves to the fallback state instead of the error escaping
  (:func:`decide_failure`).
* **Definition mismatches** (the entity's stored state is not a state of the definition, as
  after a version renamed or removed it): never retried, whatever the limits. No later attempt
  can succeed until the entity is moved (a state map), so the event ends at once with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pystator.fsm_core.definition import ErrorPolicy, FallbackMode
from pystator.fsm_core.errors import (
    ActionExecutionError,
    GuardEvaluationError,
    InvalidStateError,
    InvalidTransitionError,
    UndefinedTriggerError,
)
from pystator.fsm_core.results import TransitionResult

if TYPE_CHECKING:
    from pystator.fsm_core.machine import StateMachine

#: Exceptions an error policy retries and may turn into a move to the fallback state.
POLICY_FAILURES: tuple[type[Exception], ...] = (GuardEvaluationError, ActionExecutionError)

APPLIED_FALLBACK = "orchestrator_applied_default_fallback"
ORIGINAL_ERROR = "orchestrator_original_error"
FALLBACK_STATE = "default_fallback"


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureDecision:
    """What to do after attempt number ``attempt`` failed: try again, or move to ``fallback``
    (None: let the failure stand — raise it, or dead-letter the event)."""

    retry: bool
    fallback: str | None = None


def is_invalid_event(result: TransitionResult) -> bool:
    """True for the rejections an error policy may redirect (see the module docstring)."""
    error = result.error
    if result.success or error is None:
        return False
    return type(error) is UndefinedTriggerError or type(error) is InvalidTransitionError


def on_invalid_event(
    machine: StateMachine,
    state: str,
    result: TransitionResult,
    context: Mapping[str, Any],
    now: datetime,
) -> TransitionResult:
    """``result`` as the machine's error policy has it (unchanged unless hint/persist apply)."""
    policy = machine.error_policy
    fallback = policy.default_fallback
    if not policy.active or fallback is None or not is_invalid_event(result):
        return result
    error = result.error
    assert error is not None
    if policy.mode is FallbackMode.HINT:
        error.details[FALLBACK_STATE] = fallback
        return dataclasses.replace(result, metadata={**result.metadata, FALLBACK_STATE: fallback})
    moved = machine.fallback(state, result.trigger, context, now)
    metadata = {
        **moved.metadata,
        APPLIED_FALLBACK: True,
        ORIGINAL_ERROR: error.to_dict(),
        FALLBACK_STATE: fallback,
    }
    return dataclasses.replace(moved, metadata=metadata)


def is_policy_failure(error: BaseException) -> bool:
    """True for the failures an error policy retries (guards, expressions, effects, actions)."""
    return isinstance(error, POLICY_FAILURES)


def is_definition_mismatch(error: BaseException) -> bool:
    """True when the definition cannot apply to the entity at all (its state is unknown to it):
    retrying cannot help."""
    return isinstance(error, InvalidStateError)


def decide_failure(
    policy: ErrorPolicy, error: BaseException, attempt: int, default_attempts: int
) -> FailureDecision:
    """After attempt ``attempt`` (1-based) failed with ``error``: retry, fall back, or give up.

    ``default_attempts`` is the caller's own limit (1 for the Orchestrator, the event's
    ``max_attempts`` in the fleet); ``error_policy.retry_attempts`` replaces it for policy
    failures. Other errors keep the caller's limit and never fall back.
    """
    if is_definition_mismatch(error):
        return FailureDecision(retry=False)
    if not is_policy_failure(error):
        return FailureDecision(retry=attempt < default_attempts)
    if attempt < policy.max_attempts(default_attempts):
        return FailureDecision(retry=True)
    if policy.mode is FallbackMode.PERSIST and policy.default_fallback is not None:
        return FailureDecision(retry=False, fallback=policy.default_fallback)
    return FailureDecision(retry=False)
