"""The one exception tree of pystator.

Every error the library raises on purpose is an :class:`FSMError` subclass carrying an
:class:`ErrorCode`. Engine errors live here; store, scheduler and worker errors join the same tree
(also defined here so that ``fsm_core`` stays the root of the dependency graph).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


class ErrorCode(str, Enum):
    """Machine-readable category of an :class:`FSMError`."""

    GUARD_REJECTED = "GUARD_REJECTED"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    INVALID_TRIGGER = "INVALID_TRIGGER"
    INVALID_STATE = "INVALID_STATE"
    TERMINAL_STATE = "TERMINAL_STATE"
    TIMEOUT = "TIMEOUT"
    CONFIG = "CONFIG"
    ACTION_FAILED = "ACTION_FAILED"
    STALE_VERSION = "STALE_VERSION"
    GUARD_NOT_FOUND = "GUARD_NOT_FOUND"
    ACTION_NOT_FOUND = "ACTION_NOT_FOUND"
    UNDEFINED_STATE = "UNDEFINED_STATE"
    GUARD_FAILED = "GUARD_FAILED"
    STORE_ERROR = "STORE_ERROR"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    ENTITY_NOT_FOUND = "ENTITY_NOT_FOUND"
    SCHEDULER_ERROR = "SCHEDULER_ERROR"
    INVALID_EVENT = "INVALID_EVENT"
    SETTINGS = "SETTINGS"
    ENTITY_BUSY = "ENTITY_BUSY"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"


class FSMError(Exception):
    """Base class of every pystator error."""

    default_code: ErrorCode = ErrorCode.VALIDATION_FAILED

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: ErrorCode = code or self.default_code
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (used for history rows and dead letters)."""
        return {
            "error": type(self).__name__,
            "code": self.code.value,
            "message": self.message,
            **{k: v for k, v in self.details.items() if _is_jsonable_scalar(v)},
        }


def _is_jsonable_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem found in a machine definition, located by its path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigurationError(FSMError):
    """A machine definition (or setting) is invalid."""

    default_code = ErrorCode.CONFIG


class MachineValidationError(ConfigurationError):
    """A machine definition has one or more problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[ConfigProblem], *, source: str | None = None) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        self.source = source
        head = f"invalid machine definition{f' in {source}' if source else ''}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(
            f"{head} ({count} problem{'s' if count != 1 else ''}):\n{lines}",
            details={"source": source, "problem_count": count},
        )


class SettingsError(ConfigurationError):
    """A runtime setting (environment variable or ``pystator.cfg`` entry) is invalid."""

    default_code = ErrorCode.SETTINGS


# --- processing ----------------------------------------------------------------------------


class InvalidStateError(FSMError):
    """A state name is not valid for this machine."""

    default_code = ErrorCode.INVALID_STATE

    def __init__(self, message: str, *, state: str | None = None, **kw: Any) -> None:
        super().__init__(message, details={"state": state}, **kw)
        self.state = state


class UndefinedStateError(InvalidStateError):
    """The state is not defined by the machine."""

    default_code = ErrorCode.UNDEFINED_STATE


class InvalidTransitionError(FSMError):
    """The trigger cannot be applied in the current state."""

    default_code = ErrorCode.INVALID_TRIGGER

    def __init__(
        self,
        message: str,
        *,
        current_state: str | None = None,
        trigger: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(
            message, details={"current_state": current_state, "trigger": trigger}, **kw
        )
        self.current_state = current_state
        self.trigger = trigger


class UndefinedTriggerError(InvalidTransitionError):
    """No transition for this trigger leaves the current state (or the trigger is unknown)."""


class TerminalStateError(InvalidTransitionError):
    """The entity is in a terminal state; nothing leaves it."""

    default_code = ErrorCode.TERMINAL_STATE


class GuardRejectedError(FSMError):
    """Every candidate transition was rejected by a guard."""

    default_code = ErrorCode.GUARD_REJECTED

    def __init__(
        self,
        message: str,
        *,
        guard_name: str | None = None,
        current_state: str | None = None,
        trigger: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(
            message,
            details={"guard_name": guard_name, "current_state": current_state, "trigger": trigger},
            **kw,
        )
        self.guard_name = guard_name
        self.current_state = current_state
        self.trigger = trigger


class GuardEvaluationError(FSMError):
    """A guard raised an exception while being evaluated (a failure, not a rejection)."""

    default_code = ErrorCode.GUARD_FAILED

    def __init__(self, message: str, *, guard_name: str | None = None, **kw: Any) -> None:
        super().__init__(message, details={"guard_name": guard_name}, **kw)
        self.guard_name = guard_name


class GuardNotFoundError(FSMError):
    """A transition names a guard that is not registered."""

    default_code = ErrorCode.GUARD_NOT_FOUND

    def __init__(self, message: str, *, guard_name: str | None = None, **kw: Any) -> None:
        super().__init__(message, details={"guard_name": guard_name}, **kw)
        self.guard_name = guard_name


class ActionNotFoundError(FSMError):
    """A planned action is not registered."""

    default_code = ErrorCode.ACTION_NOT_FOUND

    def __init__(self, message: str, *, action_name: str | None = None, **kw: Any) -> None:
        super().__init__(message, details={"action_name": action_name}, **kw)
        self.action_name = action_name


class ActionExecutionError(FSMError):
    """An action raised (after its retries, if any)."""

    default_code = ErrorCode.ACTION_FAILED

    def __init__(self, message: str, *, action_name: str | None = None, **kw: Any) -> None:
        super().__init__(message, details={"action_name": action_name}, **kw)
        self.action_name = action_name


class EffectError(ActionExecutionError):
    """A declarative effect (``increment``, ``append``, ``compute`` …) could not be applied."""

    def __init__(self, message: str, *, effect: str, field: str | None = None) -> None:
        super().__init__(message, action_name=effect)
        self.details["field"] = field
        self.effect = effect
        self.field = field


class ContextValidationError(FSMError):
    """The context failed validation (``meta.validate_context`` or a ``context_validator``)."""

    default_code = ErrorCode.VALIDATION_FAILED

    def __init__(self, message: str, *, errors: Sequence[str] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors: tuple[str, ...] = tuple(errors)


class FSMTimeoutError(FSMError):
    """An operation (e.g. an action with a deadline) ran out of time."""

    default_code = ErrorCode.TIMEOUT


#: The documented name of :class:`FSMTimeoutError`.
TimeoutExpiredError = FSMTimeoutError


# --- persistence, scheduling, worker -------------------------------------------------------


class StaleVersionError(FSMError):
    """Optimistic-locking conflict: the stored version is not the one the writer expected."""

    default_code = ErrorCode.STALE_VERSION

    def __init__(
        self,
        message: str,
        *,
        entity_id: str | None = None,
        expected_version: int | None = None,
        actual_version: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(
            message,
            details={
                "entity_id": entity_id,
                "expected_version": expected_version,
                "actual_version": actual_version,
            },
            **kw,
        )
        self.entity_id = entity_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class StoreError(FSMError):
    """A state store failed; the driver's exception is the ``__cause__``."""

    default_code = ErrorCode.STORE_ERROR


class StoreUnavailableError(StoreError):
    """The store's server cannot be reached (connection refused, timed out, dropped)."""

    default_code = ErrorCode.STORE_UNAVAILABLE


class EntityNotFoundError(StoreError):
    """No record exists for the entity."""

    default_code = ErrorCode.ENTITY_NOT_FOUND


class EntityBusyError(StoreError):
    """Another worker holds the entity's lock; the work is retried shortly, nothing is lost."""

    default_code = ErrorCode.ENTITY_BUSY


class SchedulerError(FSMError):
    """A scheduler failed to arm, cancel or fire a timer."""

    default_code = ErrorCode.SCHEDULER_ERROR


class InvalidEventError(FSMError):
    """An event was refused at submission (unknown machine or trigger, bad context, bad id)."""

    default_code = ErrorCode.INVALID_EVENT


class IdempotencyConflictError(InvalidEventError):
    """An idempotency key was reused for a different event (another entity, trigger or context).

    Nothing was stored. ``event_id`` is the event the key belongs to (HTTP: 409 Conflict).
    """

    default_code = ErrorCode.IDEMPOTENCY_CONFLICT

    def __init__(
        self, message: str, *, machine: str, idempotency_key: str, event_id: int, **kw: Any
    ) -> None:
        details = {"machine": machine, "idempotency_key": idempotency_key, "event_id": event_id}
        super().__init__(message, details=details, **kw)
        self.machine = machine
        self.idempotency_key = idempotency_key
        self.event_id = event_id


# --- warnings about definitions ------------------------------------------------------------


class DefinitionWarning(UserWarning):
    """A definition loads, but part of it has no effect (e.g. a key the engine ignores)."""


class DefinitionDeprecationWarning(FutureWarning):
    """A definition uses one of pystator's own forms that a documented key replaces.

    A :class:`FutureWarning` (shown by default) because the reader is the definition's author.
    The message names the replacement.
    """


class NotFoundError(FSMError):
    """A record asked for by id or name does not exist (an event, a stored machine, an API key).

    ``details`` name what was looked for (HTTP: 404).
    """

    default_code = ErrorCode.NOT_FOUND


class ConflictError(FSMError):
    """The request is well formed but clashes with the current state of a record (HTTP: 409),
    e.g. retiring a machine that still has pending events."""

    default_code = ErrorCode.CONFLICT


class AuthenticationError(FSMError):
    """No credentials, or credentials that are not valid: an unknown or revoked API key, a token
    with a bad signature or past its expiry (HTTP: 401)."""

    default_code = ErrorCode.UNAUTHENTICATED


class PermissionDeniedError(FSMError):
    """Valid credentials whose role does not allow the operation (HTTP: 403)."""

    default_code = ErrorCode.FORBIDDEN


# --- what is kept of an error -----------------------------------------------------------------


def describe_error(
    error: BaseException, *, attempt: int | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """The JSON kept about an error: its type and message (for an :class:`FSMError` also its
    code and scalar details) and its cause. With ``attempt`` and ``at``, which attempt failed and
    when: what the fleet appends to an event's, a timer's or an action's ``errors``; without,
    what a fallback result's metadata holds for the error that caused it."""
    to_dict = getattr(error, "to_dict", None)
    described = to_dict() if callable(to_dict) else None
    if not isinstance(described, dict):
        described = {"error": type(error).__name__, "message": str(error)}
    cause = error.__cause__
    if cause is not None:
        described["cause"] = f"{type(cause).__name__}: {cause}"
    if attempt is not None:
        described["attempt"] = attempt
    if at is not None:
        described["at"] = at.isoformat()
    return described
