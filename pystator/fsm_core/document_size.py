"""The size of a document that arrived already parsed: a JSON body, a dict from code.

YAML text is measured while it is read (:mod:`pystator.fsm_core.yaml_loader`); this walks data
that exists already, against the same limits (:mod:`pystator.fsm_core.limits`). A part that
appears several times — one list object shared by two keys, as a YAML alias gives — is counted
every time it appears, as copying it to JSON would, and the walk stops as soon as the budget is
spent, so its cost is bounded by the budget whatever the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pystator.fsm_core.errors import ConfigProblem
from pystator.fsm_core.limits import MAX_DEFINITION_DEPTH, MAX_DEFINITION_NODES


def oversize(
    document: Any,
    *,
    max_nodes: int = MAX_DEFINITION_NODES,
    max_depth: int = MAX_DEFINITION_DEPTH,
) -> ConfigProblem | None:
    """The first limit ``document`` passes, located by its path; None when it fits.

    Every mapping, sequence, mapping key and scalar is a node; a mapping or sequence adds a
    level of depth (the top-level one is level 1).
    """
    nodes = 1
    pending: list[tuple[Any, int, str]] = [(document, 1, "")]
    while pending:
        value, depth, path = pending.pop()
        if not _is_collection(value):
            continue
        if depth > max_depth:
            return ConfigProblem(path, f"the document nests deeper than {max_depth} levels")
        inner = []
        for child_path, child, keyed in _children(value, path):
            nodes += 2 if keyed else 1
            if nodes > max_nodes:
                return ConfigProblem(
                    child_path,
                    f"the document has more than {max_nodes:,} nodes "
                    "(a part used several times counts each time)",
                )
            if _is_collection(child):
                inner.append((child, depth + 1, child_path))
        pending.extend(reversed(inner))  # walked in document order
    return None


def _is_collection(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple)


def _children(value: Any, path: str) -> Iterable[tuple[str, Any, bool]]:
    """``(path, child, keyed)`` of each child of a mapping (keyed) or a sequence."""
    if isinstance(value, Mapping):
        return (
            (f"{path}.{key}" if path else str(key), child, True) for key, child in value.items()
        )
    return ((f"{path}[{i}]", child, False) for i, child in enumerate(value))


__all__ = ["oversize"]
