"""Machines the diagram tests draw: flat, hierarchical (with a choice state), parallel, and a
parallel state whose region holds a compound state. The text readers below parse the exporters'
output back into structures, so tests assert on the graph, not on strings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.support.declarative_machines import PARALLEL_NAMES_YAML, TICKET_YAML, load

FLAT_YAML = """
meta: {machine_name: order_flow}
states:
  - {name: pending, type: initial}
  - name: confirmed
    timeout: {after: 10m, destination: cancelled}
  - {name: shipped, on_enter: [notify_customer]}
  - {name: delivered, type: terminal}
  - {name: cancelled, type: terminal}
transitions:
  - trigger: confirm
    source: pending
    dest: confirmed
    guards: [payment_ok]
    actions: [reserve_stock]
  - trigger: ship
    source: confirmed
    dest: shipped
    guards: [{expr: 'stock > 0 and carrier != "none"'}]
  - {trigger: deliver, source: shipped, dest: delivered}
  - {trigger: cancel, source: [pending, confirmed], dest: cancelled, actions: [refund]}
  - {after: 30s, source: pending, dest: cancelled}
"""

RIG_YAML = """
meta: {machine_name: rig}
states:
  - {name: "off", type: initial}
  - name: "on"
    type: parallel
    regions:
      - name: pump
        initial: priming
        states:
          - name: priming
          - name: pumping
            initial_child: slow
            children: [{name: slow}, {name: fast}]
      - name: light
        initial: dim
        states: [{name: dim}, {name: bright}]
  - {name: end, type: terminal}
transitions:
  - {trigger: power, source: "off", dest: "on"}
  - {trigger: primed, source: priming, dest: pumping}
  - {trigger: boost, source: slow, dest: fast}
  - {trigger: toggle, source: dim, dest: bright}
  - {trigger: fail, source: pumping, dest: end}
"""

#: Names whose Mermaid ids would clash (``.`` becomes ``_``) or be a flowchart keyword.
ALIKE_YAML = """
meta: {machine_name: ids}
states:
  - {name: order.new, type: initial}
  - {name: order_new}
  - {name: End, type: terminal}
transitions:
  - {trigger: a, source: order.new, dest: order_new}
  - {trigger: b, source: order_new, dest: End}
"""

MACHINES: dict[str, str] = {
    "flat": FLAT_YAML,
    "hierarchical": TICKET_YAML,
    "parallel": PARALLEL_NAMES_YAML,
    "nested": RIG_YAML,
    "alike": ALIKE_YAML,
}


def machine_doc(kind: str) -> dict[str, Any]:
    """The definition document of one of :data:`MACHINES`."""
    return load(MACHINES[kind])


# --- a reader for the DOT the exporter writes ---------------------------------------------------

_Q = r'"((?:[^"\\]|\\.)*)"'
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\]\s]+)')


@dataclass
class DotGraph:
    """What a DOT text says: nodes (with their innermost cluster), clusters (with their parent
    cluster and label), edges and attributes."""

    name: str = ""
    graph: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, tuple[str | None, dict[str, str]]] = field(default_factory=dict)
    clusters: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def edge(self, tail: str, head: str, label: str | None = None) -> dict[str, str]:
        """The attributes of the one edge ``tail -> head`` (with ``label``, when given)."""
        found = [
            attrs
            for t, h, attrs in self.edges
            if (t, h) == (tail, head) and (label is None or attrs.get("label") == label)
        ]
        assert len(found) == 1, (tail, head, label, self.edges)
        return found[0]

    def cluster_path(self, node: str) -> list[str]:
        """The clusters around ``node``, innermost first."""
        path = []
        cluster = self.nodes[node][0]
        while cluster is not None:
            path.append(cluster)
            cluster = self.clusters[cluster][0]
        return path


def _unquote(value: str) -> str:
    if value.startswith('"'):
        return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])
    return value


def _attrs(text: str | None) -> dict[str, str]:
    return {key: _unquote(value) for key, value in _ATTR.findall(text or "")}


def parse_dot(text: str) -> DotGraph:
    """Read the exporter's DOT line by line; a line it does not recognise fails the test."""
    graph = DotGraph()
    stack: list[str] = []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    head = re.fullmatch(rf"digraph {_Q} \{{", lines[0])
    assert head, lines[0]
    graph.name = _unquote(f'"{head.group(1)}"')
    assert lines[-1] == "}"
    for line in lines[1:-1]:
        if m := re.fullmatch(rf"subgraph {_Q} \{{", line):
            name = _unquote(f'"{m.group(1)}"')
            assert name.startswith("cluster"), name
            graph.clusters[name] = (stack[-1] if stack else None, "")
            stack.append(name)
        elif m := re.fullmatch(r'label=("(?:[^"\\]|\\.)*"); style=("[^"]*"|\w+);', line):
            graph.clusters[stack[-1]] = (graph.clusters[stack[-1]][0], _unquote(m.group(1)))
        elif line == "}":
            stack.pop()
        elif m := re.fullmatch(r"(graph|node|edge) \[(.*)\];", line):
            if m.group(1) == "graph":
                graph.graph = _attrs(m.group(2))
        elif m := re.fullmatch(rf"{_Q} -> {_Q}(?: \[(.*)\])?;", line):
            tail, head_ = _unquote(f'"{m.group(1)}"'), _unquote(f'"{m.group(2)}"')
            graph.edges.append((tail, head_, _attrs(m.group(3))))
        elif m := re.fullmatch(rf"{_Q}(?: \[(.*)\])?;", line):
            graph.nodes[_unquote(f'"{m.group(1)}"')] = (
                stack[-1] if stack else None,
                _attrs(m.group(2)),
            )
        else:
            raise AssertionError(f"unexpected DOT line: {line!r}")
    assert not stack, "unbalanced braces"
    return graph
