"""The context contract: ``state_variables`` and ``context_invariants`` as one compiled check.

Enforced before guards when ``meta.validate_context: true``: a required variable must be present
and not null, a typed variable that is present must have its type, and every invariant must
hold. The result is the list of problems (empty: the context is acceptable).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from pystator.fsm_core.definition import MachineDefinition

ContractCheck: TypeAlias = Callable[[Mapping[str, Any]], list[str]]

_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, Mapping),
}


def compile_contract(definition: MachineDefinition) -> ContractCheck | None:
    """The contract check of ``definition``, or None when it has nothing to enforce."""
    if not definition.meta.check_contract:
        return None
    required = tuple(v.key for v in definition.state_variables if v.required)
    typed = tuple(
        (v.key, v.type, _TYPE_TESTS[v.type]) for v in definition.state_variables if v.type
    )
    rules = tuple((inv.name, inv.check) for inv in definition.invariants)
    if not (required or typed or rules):
        return None

    def problems(ctx: Mapping[str, Any]) -> list[str]:
        found = [f"missing required key {key!r}" for key in required if ctx.get(key) is None]
        for key, name, test in typed:
            value = ctx.get(key)
            if value is not None and not test(value):
                found.append(f"{key!r} must be a {name}, got {type(value).__name__}")
        for name, check in rules:
            if not check.predicate(ctx):
                found.append(f"invariant {name!r} failed ({check.label})")
        return found

    return problems


def default_context(definition: MachineDefinition) -> dict[str, Any]:
    """The ``default`` of every state variable that declares one."""
    return {v.key: v.default for v in definition.state_variables if v.has_default}
