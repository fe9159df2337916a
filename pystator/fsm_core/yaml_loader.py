"""The one YAML reader (and writer) of pystator: safe tags only, and a budget.

Files, the CLI, the registry, the HTTP API and the dashboard's playground all read YAML through
:func:`parse_yaml`. It is PyYAML's safe loader with a composer that counts while it builds the
node graph: every node, and every use of an alias as the full size of the node it names. A
document that passes :data:`~pystator.fsm_core.limits.MAX_DEFINITION_NODES` or
:data:`~pystator.fsm_core.limits.MAX_DEFINITION_DEPTH` is refused at the line where it does,
before its expansion exists anywhere: an "alias bomb" (ten aliases of ten aliases of …, a few
hundred bytes that mean a billion nodes) costs what its text costs. Ordinary anchors and aliases
(a guard list shared by several transitions) load as before.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent
from yaml.nodes import Node

from pystator.fsm_core.errors import ConfigProblem, MachineValidationError
from pystator.fsm_core.limits import (
    MAX_DEFINITION_BYTES,
    MAX_DEFINITION_DEPTH,
    MAX_DEFINITION_NODES,
)


class _OverBudget(Exception):
    """The document passed a limit; the message says which and at what line."""


class _BudgetedLoader(yaml.SafeLoader):
    """PyYAML's safe loader whose composer counts nodes (aliases expanded) and depth."""

    def __init__(self, text: str, *, max_nodes: int, max_depth: int) -> None:
        super().__init__(text)
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self._nodes = 0
        self._depth = 0  # mappings and sequences open around the node being composed
        self._tallest: list[int] = []  # per open node: the tallest child composed so far
        self._anchored: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, height)

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            self._use_alias(event)
            return super().compose_node(parent, index)
        assert isinstance(event, NodeEvent)
        line = _line(event)
        first = self._nodes
        self._count(1, line, alias=False)
        collection = isinstance(event, CollectionStartEvent)
        if collection:
            self._depth += 1
            if self._depth > self.max_depth:
                raise _OverBudget(
                    f"the document nests deeper than {self.max_depth} levels at line {line}"
                )
        self._tallest.append(0)
        node = super().compose_node(parent, index)
        height = self._tallest.pop() + 1 if collection else 0
        if collection:
            self._depth -= 1
        self._grow(height)
        if event.anchor is not None:
            self._anchored[event.anchor] = (self._nodes - first, height)
        return node

    def _use_alias(self, event: AliasEvent) -> None:
        """Charge an alias the size and height of the node it names."""
        anchor = event.anchor
        if anchor is None or anchor not in self.anchors:
            return  # PyYAML reports the undefined alias
        line = _line(event)
        measured = self._anchored.get(anchor)
        if measured is None:  # the anchored node is still open: the alias is inside it
            raise _OverBudget(f"alias *{anchor} at line {line} refers to a node that contains it")
        nodes, height = measured
        self._count(nodes, line, alias=True)
        if self._depth + height > self.max_depth:
            raise _OverBudget(f"aliases nest deeper than {self.max_depth} levels at line {line}")
        self._grow(height)

    def _count(self, nodes: int, line: int, *, alias: bool) -> None:
        self._nodes += nodes
        if self._nodes > self.max_nodes:
            what = "aliases expand past" if alias else "the document has more than"
            raise _OverBudget(f"{what} {self.max_nodes:,} nodes at line {line}")

    def _grow(self, height: int) -> None:
        if self._tallest and height > self._tallest[-1]:
            self._tallest[-1] = height


def _line(event: NodeEvent) -> int:
    """The 1-based line an event starts on (0 when the parser gave no position)."""
    return event.start_mark.line + 1 if event.start_mark is not None else 0


def parse_yaml(
    text: str,
    *,
    source: str | None = None,
    max_bytes: int = MAX_DEFINITION_BYTES,
    max_nodes: int = MAX_DEFINITION_NODES,
    max_depth: int = MAX_DEFINITION_DEPTH,
) -> Any:
    """The document in ``text`` (safe tags only).

    Raises :class:`MachineValidationError` with a located problem when the text is not YAML,
    or is larger than ``max_bytes`` UTF-8 bytes, or holds more than ``max_nodes`` nodes
    (aliases counted expanded), or nests deeper than ``max_depth`` levels.
    """
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise _refusal(f"the document is {size:,} bytes; at most {max_bytes:,} are read", source)
    loader = _BudgetedLoader(text, max_nodes=max_nodes, max_depth=max_depth)
    try:
        return loader.get_single_data()
    except _OverBudget as exc:
        raise _refusal(str(exc), source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise _refusal(
            f"YAML syntax error at {where}: {exc.problem or 'invalid YAML'}", source
        ) from exc
    except yaml.YAMLError as exc:
        raise _refusal(f"YAML error: {exc}", source) from exc
    finally:
        loader.dispose()


def dump_yaml(data: Any) -> str:
    """``data`` as YAML text, keys in their order (what the dashboard shows of a definition)."""
    return yaml.safe_dump(data, sort_keys=False)


def _refusal(message: str, source: str | None) -> MachineValidationError:
    return MachineValidationError([ConfigProblem("", message)], source=source)


__all__ = ["dump_yaml", "parse_yaml"]
