"""How two decisions on the same input differ: the one comparison of replay and shadow mode.

A recorded (or active) decision is its target state (None: rejected) and its planned actions;
the candidate's is a :class:`TransitionResult`. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from pystator.fsm_core.results import TransitionResult

#: The candidate moves elsewhere.
TARGET = "target"
#: The candidate rejects what was applied.
REJECTED = "rejected"
#: The candidate applies what was rejected.
ACCEPTED = "accepted"
#: Same target, other actions.
ACTIONS = "actions"
#: The candidate raised.
ERROR = "error"

KINDS = (TARGET, REJECTED, ACCEPTED, ACTIONS, ERROR)


def divergence(
    target: str | None, actions: Sequence[str], candidate: TransitionResult
) -> str | None:
    """The kind of difference between a decision (``target`` None: rejected) and the
    candidate's result, or None when they agree."""
    moved = candidate.success and candidate.target_state is not None
    if target is None:
        return ACCEPTED if moved else None
    if not moved:
        return REJECTED
    if candidate.target_state != target:
        return TARGET
    if candidate.all_actions != tuple(actions):
        return ACTIONS
    return None


__all__ = ["ACCEPTED", "ACTIONS", "ERROR", "KINDS", "REJECTED", "TARGET", "divergence"]
