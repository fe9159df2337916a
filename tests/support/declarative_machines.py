"""Machines written in the documented schema, shared by the schema tests and the property tests.

Our own examples (not the documentation's): a support-ticket workflow (flat ``parent:`` hierarchy
with ``initial_child``, groups, a choice state, ``"*"``, a trigger-less ``after``, an ``error``
state) and one parallel machine written in both region forms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DECL_ORDER_PATH = Path(__file__).resolve().parents[2] / "examples" / "declarative_order.yaml"

TICKET_YAML = """
meta:
  machine_name: support_ticket
  version: "3.1"
  description: Support ticket triage
groups:
  active: {description: Being worked on}
  finished: {}
state_variables:
  - key: ticket_id
    type: string
    required: true
  - key: reopen_count
    type: number
    default: 0
  - severity
states:
  - {name: received, type: initial, group: active, on_exit: [{set: {stage: accepted}}]}
  - name: handling
    group: active
    initial_child: queued
    on_enter: [log_handling]
    on_exit: [leave_handling]
  - {name: queued, parent: handling, on_exit: [leave_queue]}
  - {name: working, parent: handling, on_enter: [{increment: touches}], on_exit: [pause_work]}
  - {name: expert, parent: handling, on_enter: [page_expert]}
  - {name: escalation, type: choice}
  - {name: resolved, group: finished, on_enter: [{timestamp: resolved_at}]}
  - {name: archived, type: terminal, group: finished}
  - {name: broken, type: error}
transitions:
  - trigger: accept
    source: received
    dest: handling
    guards: [{check: {field: ticket_id, op: is_set}}]
  - {trigger: pick, source: queued, dest: working}
  - trigger: escalate
    source: working
    dest: escalation
    actions: [{append: {field: escalations, value: manual}}]
  - source: escalation
    dest: expert
    guards: [{check: {field: severity, op: in, values: [high, critical]}}]
    actions: [notify_expert]
  - {source: escalation, dest: queued}
  - {trigger: solve, source: handling, dest: resolved, ref: REQ-7, refs: [REQ-8]}
  - trigger: reopen
    source: resolved
    dest: handling
    guards: [{check: {field: reopen_count, op: lt, value: 2}}]
    actions: [{increment: reopen_count}]
  - {after: 2s, source: resolved, dest: archived}
  - {trigger: archive, source: "*", dest: archived}
"""

PARALLEL_NAMES_YAML = """
meta: {machine_name: desk}
states:
  - {name: idle, type: initial, on_exit: [leave_idle]}
  - name: trading
    type: parallel
    on_enter: [open_session]
    on_exit: [close_session]
    regions:
      - {name: orders, initial: scanning, states: [scanning, placing]}
      - {name: risk, initial: calm, states: [calm, alarmed]}
  - {name: scanning, parent: trading, on_enter: [start_scan], on_exit: [stop_scan]}
  - {name: placing, on_enter: [{increment: placed}, place_order]}
  - {name: calm, parent: trading, on_exit: [leave_calm]}
  - {name: alarmed, parent: trading, on_enter: [raise_alarm]}
  - {name: halted, type: terminal}
transitions:
  - {trigger: start, source: idle, dest: trading}
  - {trigger: found, source: scanning, dest: placing, region: orders}
  - {trigger: filled, source: placing, dest: scanning, region: orders}
  - {trigger: spike, source: calm, dest: alarmed, region: risk}
  - {trigger: settle, source: "*", dest: calm, region: risk}
  - {trigger: halt, source: trading, dest: halted}
"""

PARALLEL_NESTED_YAML = """
meta: {machine_name: desk}
states:
  - {name: idle, type: initial, on_exit: [leave_idle]}
  - name: trading
    type: parallel
    on_enter: [open_session]
    on_exit: [close_session]
    regions:
      - name: orders
        initial: scanning
        states:
          - {name: scanning, on_enter: [start_scan], on_exit: [stop_scan]}
          - {name: placing, on_enter: [{increment: placed}, place_order]}
      - name: risk
        initial: calm
        states:
          - {name: calm, on_exit: [leave_calm]}
          - {name: alarmed, on_enter: [raise_alarm]}
  - {name: halted, type: terminal}
transitions:
  - {trigger: start, source: idle, dest: trading}
  - {trigger: found, source: scanning, dest: placing, region: orders}
  - {trigger: filled, source: placing, dest: scanning, region: orders}
  - {trigger: spike, source: calm, dest: alarmed, region: risk}
  - {trigger: settle, source: "*", dest: calm, region: risk}
  - {trigger: halt, source: trading, dest: halted}
"""


def load(text: str) -> dict[str, Any]:
    """The document in ``text``."""
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def decl_order() -> dict[str, Any]:
    """The effects-and-checks order machine (also served to the worker fleet from a file)."""
    return load(DECL_ORDER_PATH.read_text())


#: Events for ``decl_order`` and the context every path must end with.
DECL_ORDER_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("submit", {"qty": 3, "price": 400, "budget_left": 2}),
    ("revise", {}),
    ("approve", {}),
]
DECL_ORDER_FINAL: dict[str, Any] = {
    "qty": 3,
    "price": 400,
    "budget_left": 1,
    "submitted": True,
    "flags": {"fresh": True},
    "reviews": 2,
    "trail": ["review", "revised", "review"],
    "total": 1200,
    "tier": "large",
    "approved_by": "auto",
    "audited": True,
}
