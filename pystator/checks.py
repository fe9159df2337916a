"""Declarative checks (``check: {field, op, value}``) outside a machine."""

from __future__ import annotations

from pystator.fsm_core.checks import OPERATORS, CheckError, CheckSpec, evaluate_check, parse_check

__all__ = ["OPERATORS", "CheckError", "CheckSpec", "evaluate_check", "parse_check"]
