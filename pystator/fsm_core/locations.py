"""Where in a YAML or JSON document a problem's path points: its line number.

Problems are reported by path (``states[2].when[0].op``); :class:`ProblemLocator` adds the line
of that node in the file the definition was read from, so ``pystator validate`` can say
``states[2].when[0].op (line 14): unknown operator 'around'``. The text is composed into YAML
nodes once (JSON is read as YAML for this); a path that does not resolve gets the line of the
deepest node it reaches, and a document that does not compose gets no lines at all.
"""

from __future__ import annotations

import re

import yaml

from pystator.fsm_core.errors import ConfigProblem

_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


class ProblemLocator:
    """Line numbers of paths in one document's text."""

    def __init__(self, text: str) -> None:
        try:
            self._root: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            self._root = None

    def line(self, path: str) -> int | None:
        """The 1-based line ``path`` points at, or None when it cannot be told."""
        node = self._root
        if node is None or not path:
            return None
        line = node.start_mark.line + 1
        for index, key in _TOKEN.findall(path):
            if isinstance(node, yaml.SequenceNode) and index:
                position = int(index)
                if position >= len(node.value):
                    break
                node = node.value[position]
            elif isinstance(node, yaml.MappingNode) and key:
                found = next((pair for pair in node.value if pair[0].value == key), None)
                if found is None:
                    break
                line = found[0].start_mark.line + 1
                node = found[1]
                continue
            else:
                break
            line = node.start_mark.line + 1
        return line

    def describe(self, problem: ConfigProblem) -> str:
        """``path (line N): message`` (just the problem when its line is unknown)."""
        line = self.line(problem.path)
        if line is None:
            return str(problem)
        return f"{problem.path} (line {line}): {problem.message}"


__all__ = ["ProblemLocator"]
