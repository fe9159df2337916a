"""Diagrams of a machine, drawn from its definition so they never drift from the YAML.

=============================  ==============================================================
:func:`to_mermaid`             Mermaid ``stateDiagram-v2`` (also the dashboard's diagram)
:func:`to_mermaid_flowchart`   Mermaid ``flowchart``
:func:`to_dot`                 Graphviz DOT (clusters for compound and parallel states)
:func:`to_scxml`               W3C SCXML
:func:`get_statistics`         counts and flags (states, transitions, guards …)
=============================  ==============================================================

Each takes a :class:`~pystator.StateMachine` (or its ``MachineDefinition``).
``pystator viz FILE --format mermaid|flowchart|dot|scxml`` prints them from the shell.
"""

from __future__ import annotations

from pystator.visualization.common import DIRECTIONS, Direction, format_delay
from pystator.visualization.dot import to_dot
from pystator.visualization.flowchart import to_mermaid_flowchart
from pystator.visualization.mermaid import mermaid_id, to_mermaid
from pystator.visualization.scxml import to_scxml
from pystator.visualization.statistics import get_statistics

__all__ = [
    "DIRECTIONS",
    "Direction",
    "format_delay",
    "get_statistics",
    "mermaid_id",
    "to_dot",
    "to_mermaid",
    "to_mermaid_flowchart",
    "to_scxml",
]
