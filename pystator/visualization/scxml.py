"""SCXML (W3C State Chart XML) of a machine, for tools that read the standard format.

The mapping:

* a terminal state is a ``<final>``, a parallel state a ``<parallel>`` whose regions are
  ``<state>`` children, a compound state a ``<state initial=…>`` holding its children;
* a transition is a ``<transition event=… target=… cond=…>`` inside each of its source states
  (``type="internal"`` for an internal one); a choice state's branches have no ``event``;
* guards go into ``cond`` joined by `` and ``, as names: SCXML cannot evaluate them;
* named actions and effects are ``<pystator:action name=…/>`` elements (SCXML allows executable
  content from other namespaces), in ``<onentry>`` / ``<onexit>`` for state actions;
* a delayed transition (``after:``) or a state ``timeout:`` becomes the usual SCXML pattern: the
  state sends itself the event with a ``delay`` on entry, cancels it on exit, and a transition
  on that event leaves.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pystator.fsm_core.definition import (
    ActionSpec,
    MachineDefinition,
    RegionSpec,
    StateKind,
    StateSpec,
    TransitionSpec,
)
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.tree import StateTree
from pystator.visualization.common import children_by_parent, definition_of, guard_names

SCXML_NAMESPACE = "http://www.w3.org/2005/07/scxml"
#: Namespace of pystator's own executable content (``<pystator:action>``).
PYSTATOR_NAMESPACE = "urn:pystator:scxml"


def to_scxml(machine: StateMachine | MachineDefinition) -> str:
    """The SCXML document of ``machine`` (UTF-8 XML text with a declaration)."""
    definition = definition_of(machine)
    root = _ScxmlWriter(definition).document()
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


class _ScxmlWriter:
    """Builds the element tree; namespaces are written as plain ``xmlns`` attributes so that no
    global :func:`xml.etree.ElementTree.register_namespace` state is touched."""

    def __init__(self, definition: MachineDefinition) -> None:
        self.definition = definition
        self.children = children_by_parent(definition)
        self.tree = StateTree(definition)
        self.outgoing: dict[str, list[TransitionSpec]] = {}
        for transition in definition.transitions:
            for source in transition.sources:
                self.outgoing.setdefault(source, []).append(transition)

    def document(self) -> ET.Element:
        root = ET.Element(
            "scxml",
            {
                "xmlns": SCXML_NAMESPACE,
                "xmlns:pystator": PYSTATOR_NAMESPACE,
                "version": "1.0",
                "name": self.definition.meta.name,
            },
        )
        initial = next((s for s in self.definition.states if s.machine_initial), None)
        if initial is not None:
            root.set("initial", initial.name)
        for state in self.children.get(None, []):
            self._state(root, state)
        return root

    def _state(self, parent: ET.Element, state: StateSpec) -> None:
        if state.kind is StateKind.TERMINAL:
            element = ET.SubElement(parent, "final", {"id": state.name})
        elif state.regions:
            element = ET.SubElement(parent, "parallel", {"id": state.name})
        else:
            element = ET.SubElement(parent, "state", {"id": state.name})
            initial = self.tree.initial_child.get(state.name)
            if initial is not None and state.name in self.children:
                element.set("initial", initial)
        timers = self._timers(state)
        self._actions(element, "onentry", state.on_enter, timers)
        self._actions(element, "onexit", state.on_exit, [])
        if timers:
            onexit = element.find("onexit")
            if onexit is None:
                onexit = ET.SubElement(element, "onexit")
            for send_id, _event, _delay in timers:
                ET.SubElement(onexit, "cancel", {"sendid": send_id})
        for transition in self.outgoing.get(state.name, []):
            self._transition(element, transition)
        if state.timeout is not None:
            ET.SubElement(
                element,
                "transition",
                {"event": state.timeout.trigger, "target": state.timeout.dest},
            )
        for region in state.regions:
            self._region(element, region)
        for child in self.children.get(state.name, []):
            self._state(element, child)

    def _region(self, parent: ET.Element, region: RegionSpec) -> None:
        element = ET.SubElement(parent, "state", {"id": region.name})
        if region.initial:
            element.set("initial", region.initial)
        for child in self.children.get(region.name, []):
            self._state(element, child)

    def _timers(self, state: StateSpec) -> list[tuple[str, str, int]]:
        """``(send id, event, delay ms)`` of each delayed event entering ``state`` schedules."""
        timers = [
            (f"{state.name}.after.{t.index}", t.trigger, t.after_ms)
            for t in self.outgoing.get(state.name, [])
            if t.after_ms is not None
        ]
        if state.timeout is not None:
            timers.append((f"{state.name}.timeout", state.timeout.trigger, state.timeout.delay_ms))
        return timers

    def _actions(
        self,
        element: ET.Element,
        tag: str,
        actions: tuple[ActionSpec, ...],
        timers: list[tuple[str, str, int]],
    ) -> None:
        if not actions and not timers:
            return
        block = ET.SubElement(element, tag)
        for send_id, event, delay_ms in timers:
            ET.SubElement(block, "send", {"id": send_id, "event": event, "delay": f"{delay_ms}ms"})
        for action in actions:
            ET.SubElement(block, "pystator:action", {"name": action.name})

    def _transition(self, parent: ET.Element, transition: TransitionSpec) -> None:
        attrs: dict[str, str] = {}
        if transition.declared_trigger or transition.after_ms is not None:
            attrs["event"] = transition.trigger
        if transition.guards:
            attrs["cond"] = " and ".join(guard_names(transition.guards))
        attrs["target"] = transition.dest
        if transition.internal:
            attrs["type"] = "internal"
        element = ET.SubElement(parent, "transition", attrs)
        for action in transition.actions:
            ET.SubElement(element, "pystator:action", {"name": action.name})
