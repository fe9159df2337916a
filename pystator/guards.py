"""Guards: the registry of named predicates, the built-in guard helpers and the ``expr:`` language."""

from __future__ import annotations

from pystator.fsm_core.expressions import (
    CompiledExpression,
    ExpressionError,
    ExpressionEvaluationError,
    compile_expression,
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

__all__ = [
    "CompiledExpression",
    "ExpressionError",
    "ExpressionEvaluationError",
    "GuardRegistry",
    "GuardResult",
    "all_of",
    "any_of",
    "compile_expression",
    "equals",
    "greater_than",
    "in_list",
    "negate",
]
