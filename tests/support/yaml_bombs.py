"""Definitions whose YAML aliases expand exponentially (the tests of the definition budget)."""

from __future__ import annotations

#: Size of the issue's alias bomb: nine levels of ten aliases under ``metadata:``.
ISSUE_BOMB_BYTES = 681


def alias_bomb(levels: int = 9, width: int = 10, *, name: str = "b") -> str:
    """A valid one-state machine whose ``metadata`` holds ``width ** levels`` leaves once its
    aliases are expanded (``a1: &a1 [*a0, *a0, …]`` and so on). With the defaults it is the
    issue's file: 681 bytes, nine levels of ten aliases, a billion leaves."""
    lines = [f"meta: {{machine_name: {name}}}", "states: [{name: a, type: initial}]"]
    lines += ["description: an alias bomb", "metadata:", "  a0: &a0 lOL"]
    lines += [
        f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)
    ]
    text = "\n".join(lines) + "\n"
    return text.replace("lOL", "l" + "o" * max(ISSUE_BOMB_BYTES - len(text) + 1, 1) + "l")


def shared_guards() -> str:
    """Ordinary anchors: one guard list shared by two transitions, and a merge key."""
    return """\
meta: {machine_name: shared}
metadata: {checks: &checks [is_valid, is_paid]}
states:
  - {name: draft, type: initial}
  - {name: sent, type: stable}
  - {name: done, type: terminal}
transitions:
  - &send {trigger: send, source: draft, dest: sent, guards: *checks}
  - <<: *send
    trigger: finish
    source: sent
    dest: done
"""


__all__ = ["ISSUE_BOMB_BYTES", "alias_bomb", "shared_guards"]
