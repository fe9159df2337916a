"""Guards: the registry of named predicates and the safe inline ``expr:`` language."""

from __future__ import annotations

from pystator.fsm_core.expressions import (
    CompiledExpression,
    ExpressionError,
    ExpressionEvaluationError,
    compile_expression,
)
from pystator.fsm_core.guards import GuardRegistry

__all__ = [
    "CompiledExpression",
    "ExpressionError",
    "ExpressionEvaluationError",
    "GuardRegistry",
    "compile_expression",
]
