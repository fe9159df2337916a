"""Where in a YAML or JSON document a problem's path points: its line number.

Problems are reported by path (``states[2].when[0].op``); :class:`ProblemLocator` adds the line
of that node in the file the definition was read from, so ``pystator validate`` can say
``states[2].when[0].op (line 14): unknown operator 'around'``. The text is composed into YAML
nodes once, within the YAML reader's budget (JSON is read as YAML for this); a path that does not resolve gets the line of the
deepest node it reaches, and a document that does not compose gets no lines at all.
"""

from __future__ import annotations

import re

from pystator.fsm_core.errors import ConfigProblem
from pystator.fsm_core.yaml_loader import line_tree

_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


class ProblemLocator:
    """Line numbers of paths in one document's text."""

    def __init__(self, text: str) -> None:
        self._root = line_tree(text)

    def line(self, path: str) -> int | None:
        """The 1-based line ``path`` points at, or None when it cannot be told."""
        node = self._root
        if node is None or not path:
            return None
        line = node.line
        for index, key in _TOKEN.findall(path):
            if index and node.items:
                position = int(index)
                if position >= len(node.items):
                    break
                node = node.items[position]
                line = node.line
            elif key and key in node.keys:
                line = node.keys[key]
                node = node.values[key]
            else:
                break
        return line

    def describe(self, problem: ConfigProblem) -> str:
        """``path (line N): message`` (just the problem when its line is unknown)."""
        line = self.line(problem.path)
        if line is None:
            return str(problem)
        return f"{problem.path} (line {line}): {problem.message}"


__all__ = ["ProblemLocator"]
