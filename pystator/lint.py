"""Lint: static review of machine definitions (unreachable states, dead ends, shadowing …)."""

from __future__ import annotations

from pystator.fsm_core.lint import SEVERITY_ORDER, LintSeverity, LintWarning, lint

__all__ = ["SEVERITY_ORDER", "LintSeverity", "LintWarning", "lint"]
