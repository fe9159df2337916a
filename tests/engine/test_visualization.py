"""``pystator.visualization``: every export read back as a structure, on flat, hierarchical,
parallel and nested machines."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from pystator import StateMachine
from pystator.visualization import (
    get_statistics,
    to_dot,
    to_mermaid,
    to_mermaid_flowchart,
    to_scxml,
)
from tests.support.diagram_machines import MACHINES, machine_doc, parse_dot

NS = {"s": "http://www.w3.org/2005/07/scxml", "p": "urn:pystator:scxml"}


def machine(kind: str) -> StateMachine:
    return StateMachine.from_dict(machine_doc(kind))


# --- to_mermaid ---------------------------------------------------------------------------------


def test_mermaid_title_is_quoted_yaml_so_colons_and_quotes_stay_text() -> None:
    text = to_mermaid(machine("flat"), title='Orders: "v2" # draft')
    front = text.split("\n")[:3]
    assert front[0] == front[2] == "---"
    assert json.loads(front[1].removeprefix("title: ")) == 'Orders: "v2" # draft'


def test_mermaid_labels_escape_each_character_once() -> None:
    text = to_mermaid(machine("flat"))
    assert "ship [expr: stock > 0 and carrier != #quot;none#quot;]" in text
    assert "#35;" not in text and "#quot#59;" not in text


def test_mermaid_draws_regions_and_composites() -> None:
    text = to_mermaid(machine("nested"))
    assert re.search(r"state on \{\n\s+state pump \{\n\s+\[\*\] --> priming", text)
    assert re.search(r"state pumping \{\n\s+\[\*\] --> slow", text)
    assert "\n        --\n" in text  # regions side by side


# --- to_mermaid_flowchart -----------------------------------------------------------------------

_NODE = re.compile(r"^\s+(\w+)(\(\[|\{\{|\{|\[)\"([^\"]*)\"(\]\)|\}\}|\}|\])$")
_LINK = re.compile(r'^\s+(\w+) (-->|-\.->)(?:\|"([^"]*)"\|)? (\w+)$')
_SUBGRAPH = re.compile(r'^\s+subgraph (\w+) \["([^"]*)"\]$')


def read_flowchart(
    text: str,
) -> tuple[dict[str, str], dict[str, str | None], list[tuple[str, ...]]]:
    """Shapes by node id, the subgraph of each node and subgraph, and links."""
    shapes: dict[str, str] = {}
    parent: dict[str, str | None] = {}
    links: list[tuple[str, ...]] = []
    stack: list[str] = []
    lines = text.split("\n")
    body = lines[lines.index(next(x for x in lines if x.startswith("flowchart"))) + 1 :]
    for line in body:
        if m := _SUBGRAPH.match(line):
            parent[m.group(1)] = stack[-1] if stack else None
            stack.append(m.group(1))
        elif line.strip() == "end":
            stack.pop()
        elif m := _NODE.match(line):
            shapes[m.group(1)] = m.group(2) + m.group(4)
            parent[m.group(1)] = stack[-1] if stack else None
        elif m := _LINK.match(line):
            links.append((m.group(1), m.group(2), m.group(3) or "", m.group(4)))
        else:
            raise AssertionError(f"unexpected flowchart line: {line!r}")
    assert not stack
    return shapes, parent, links


def test_flowchart_shapes_follow_state_kinds() -> None:
    text = to_mermaid_flowchart(machine("flat"), title="Order Flow", direction="LR")
    assert text.split("\n")[3] == "flowchart LR"
    shapes, parent, links = read_flowchart(text)
    assert shapes == {
        "pending": "([])",
        "confirmed": "[]",
        "shipped": "[]",
        "delivered": "{{}}",
        "cancelled": "{{}}",
    }
    assert set(parent.values()) == {None}
    assert ("pending", "-->", "confirm [payment_ok]", "confirmed") in links
    assert ("pending", "-.->", "after 30s", "cancelled") in links
    assert ("confirmed", "-.->", "timeout (10m)", "cancelled") in links


def test_flowchart_subgraphs_for_compound_and_parallel_states() -> None:
    shapes, parent, links = read_flowchart(to_mermaid_flowchart(machine("hierarchical")))
    assert shapes["escalation"] == "{}"  # choice: rhombus
    assert {n for n, p in parent.items() if p == "handling"} == {"queued", "working", "expert"}
    assert ("received", "-->", "accept [check: ticket_id is_set]", "handling") in links
    assert ("escalation", "-->", "", "queued") in links  # a choice branch has no event

    shapes, parent, links = read_flowchart(to_mermaid_flowchart(machine("nested")))
    assert parent["pump"] == parent["light"] == "on"
    assert parent["pumping"] == "pump" and parent["slow"] == parent["fast"] == "pumping"
    assert ("pumping", "-->", "fail", "end_") in links  # ``end`` is a keyword: renamed
    assert shapes["end_"] == "{{}}"


def test_flowchart_options() -> None:
    quiet = to_mermaid_flowchart(machine("flat"), show_guards=False, show_timeouts=False)
    _, _, links = read_flowchart(quiet)
    assert ("pending", "-->", "confirm", "confirmed") in links
    assert not [link for link in links if link[1] == "-.->"]
    _, _, links = read_flowchart(to_mermaid_flowchart(machine("flat"), show_actions=True))
    assert ("pending", "-->", "confirm [payment_ok] / reserve_stock", "confirmed") in links
    with pytest.raises(ValueError, match="direction"):
        to_mermaid_flowchart(machine("flat"), direction="XY")  # type: ignore[arg-type]


# --- to_dot -------------------------------------------------------------------------------------


def test_dot_flat_machine() -> None:
    graph = parse_dot(to_dot(machine("flat"), title="Order Lifecycle", show_actions=True))
    assert graph.name == "order_flow"
    assert graph.graph["label"] == "Order Lifecycle" and graph.graph["compound"] == "true"
    assert graph.clusters == {}
    assert graph.nodes["delivered"][1]["peripheries"] == "2"
    assert graph.edge("[*]", "pending") == {}
    assert graph.edge("pending", "confirmed")["label"] == "confirm\n[payment_ok]\n/ reserve_stock"
    ship = graph.edge("confirmed", "shipped")["label"]
    assert ship == 'ship\n[expr: stock > 0 and carrier != "none"]'  # quotes escaped and back
    assert graph.edge("pending", "cancelled", "after 30s")["style"] == "dashed"
    assert graph.edge("confirmed", "cancelled", "timeout\n(10m)")["style"] == "dashed"


def test_dot_options_hide_guards_actions_and_timeouts() -> None:
    graph = parse_dot(to_dot(machine("flat"), show_guards=False, show_timeouts=False))
    assert graph.edge("pending", "confirmed")["label"] == "confirm"
    assert all(attrs.get("style") != "dashed" for _, _, attrs in graph.edges)
    assert parse_dot(to_dot(machine("flat"), direction="TB")).graph["rankdir"] == "TB"


def test_dot_compound_state_is_a_cluster_and_edges_clip_at_it() -> None:
    graph = parse_dot(to_dot(machine("hierarchical")))
    assert graph.clusters == {"cluster:handling": (None, "handling")}
    for child in ("queued", "working", "expert"):
        assert graph.cluster_path(child) == ["cluster:handling"]
    assert graph.nodes["escalation"][1]["shape"] == "diamond"
    assert graph.edge("[*]handling", "queued") == {}  # where handling starts
    # into ``handling``: to its initial leaf, clipped at the cluster; out of it: the same
    accept = graph.edge("received", "queued")
    assert accept["lhead"] == "cluster:handling" and accept["label"].startswith("accept")
    assert graph.edge("queued", "resolved")["ltail"] == "cluster:handling"
    assert "lhead" not in graph.edge("queued", "working")


def test_dot_parallel_state_has_one_cluster_per_region() -> None:
    graph = parse_dot(to_dot(machine("parallel")))
    assert graph.clusters == {
        "cluster:trading": (None, "trading"),
        "cluster:orders": ("cluster:trading", "orders"),
        "cluster:risk": ("cluster:trading", "risk"),
    }
    assert graph.cluster_path("placing") == ["cluster:orders", "cluster:trading"]
    assert graph.cluster_path("alarmed") == ["cluster:risk", "cluster:trading"]
    assert graph.edge("[*]orders", "scanning") == {} and graph.edge("[*]risk", "calm") == {}
    assert graph.edge("idle", "scanning")["lhead"] == "cluster:trading"
    assert graph.edge("scanning", "halted")["ltail"] == "cluster:trading"


def test_dot_compound_state_inside_a_region() -> None:
    graph = parse_dot(to_dot(machine("nested")))
    assert graph.cluster_path("fast") == ["cluster:pumping", "cluster:pump", "cluster:on"]
    assert graph.edge("off", "priming")["lhead"] == "cluster:on"
    assert graph.edge("priming", "slow")["lhead"] == "cluster:pumping"
    assert graph.edge("slow", "end")["ltail"] == "cluster:pumping"


@pytest.mark.skipif(
    shutil.which("dot") is None and not os.environ.get("PYSTATOR_REQUIRE_SERVICES"),
    reason="Graphviz `dot` is not installed (CI installs it and requires it)",
)
@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_graphviz_renders_the_dot_with_the_same_clusters(kind: str) -> None:
    """Optional: Graphviz itself reads the text (``-Tjson`` reports the clusters it built)."""
    source = to_dot(machine(kind), title=kind, show_actions=True)
    done = subprocess.run(
        ["dot", "-Tjson"], input=source, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    objects = json.loads(done.stdout)["objects"]
    by_id = {o["_gvid"]: o["name"] for o in objects}
    members = {
        o["name"]: {by_id[i] for i in o.get("nodes", [])}
        for o in objects
        if o["name"].startswith("cluster")
    }
    ours = parse_dot(source)
    assert set(members) == set(ours.clusters)
    for node in ours.nodes:  # Graphviz put every node in the clusters we nested it in
        assert {c for c, inside in members.items() if node in inside} == set(
            ours.cluster_path(node)
        ), node


# --- to_scxml -----------------------------------------------------------------------------------


def scxml(kind: str) -> ET.Element:
    return ET.fromstring(to_scxml(machine(kind)))


def state(root: ET.Element, name: str) -> ET.Element:
    (found,) = [e for e in root.iter() if e.get("id") == name]
    return found


def transitions(element: ET.Element) -> list[dict[str, str]]:
    return [dict(t.attrib) for t in element.findall("s:transition", NS)]


def test_scxml_flat_machine() -> None:
    root = scxml("flat")
    assert root.tag == "{http://www.w3.org/2005/07/scxml}scxml"
    assert (root.get("name"), root.get("initial"), root.get("version")) == (
        "order_flow",
        "pending",
        "1.0",
    )
    finals = {e.get("id") for e in root.findall("s:final", NS)}
    assert finals == {"delivered", "cancelled"}
    assert {e.get("id") for e in root.findall("s:state", NS)} == {"pending", "confirmed", "shipped"}
    confirm = state(root, "pending").find("s:transition[@event='confirm']", NS)
    assert confirm is not None and confirm.get("cond") == "payment_ok"
    assert [a.get("name") for a in confirm.findall("p:action", NS)] == ["reserve_stock"]
    ship = transitions(state(root, "confirmed"))
    assert {"event": "ship", "cond": 'stock > 0 and carrier != "none"', "target": "shipped"} in [
        {**t, "cond": t.get("cond", "").removeprefix("expr: ")} for t in ship
    ]
    # one ``cancel`` rule with two sources: a transition in each
    for source in ("pending", "confirmed"):
        assert {"event": "cancel", "target": "cancelled"} in transitions(state(root, source))


def test_scxml_delays_are_sent_on_entry_and_cancelled_on_exit() -> None:
    root = scxml("flat")
    confirmed = state(root, "confirmed")
    (send,) = confirmed.findall("s:onentry/s:send", NS)
    assert (send.get("event"), send.get("delay")) == ("timeout", "600000ms")
    (cancel,) = confirmed.findall("s:onexit/s:cancel", NS)
    assert cancel.get("sendid") == send.get("id")
    assert {"event": "timeout", "target": "cancelled"} in transitions(confirmed)
    pending = state(root, "pending")
    (send,) = pending.findall("s:onentry/s:send", NS)
    assert send.get("delay") == "30000ms"
    assert {"event": send.get("event"), "target": "cancelled"} in transitions(pending)
    shipped = state(root, "shipped")
    assert [a.get("name") for a in shipped.findall("s:onentry/p:action", NS)] == ["notify_customer"]


def test_scxml_compound_and_choice_states() -> None:
    root = scxml("hierarchical")
    handling = state(root, "handling")
    assert handling.tag.endswith("}state") and handling.get("initial") == "queued"
    assert [c.get("id") for c in handling.findall("s:state", NS)] == ["queued", "working", "expert"]
    assert {"event": "solve", "target": "resolved"} in transitions(handling)
    branches = transitions(state(root, "escalation"))
    assert all("event" not in b for b in branches)  # taken at once: eventless
    assert [b["target"] for b in branches] == ["expert", "queued"]
    internal = ET.fromstring(to_scxml(StateMachine.from_dict(_with_internal())))
    assert {"event": "poke", "target": "b", "type": "internal"} in transitions(state(internal, "b"))


def _with_internal() -> dict[str, object]:
    return {
        "meta": {"machine_name": "i"},
        "states": [{"name": "a", "type": "initial"}, {"name": "b"}],
        "transitions": [
            {"trigger": "go", "source": "a", "dest": "b"},
            {"trigger": "poke", "source": "b", "dest": "b", "internal": True},
        ],
    }


def test_scxml_parallel_state_with_regions() -> None:
    root = scxml("nested")
    on = state(root, "on")
    assert on.tag.endswith("}parallel")
    regions = on.findall("s:state", NS)
    assert [(r.get("id"), r.get("initial")) for r in regions] == [
        ("pump", "priming"),
        ("light", "dim"),
    ]
    pumping = state(root, "pumping")
    assert pumping.get("initial") == "slow"
    assert [c.get("id") for c in pumping.findall("s:state", NS)] == ["slow", "fast"]
    assert {"event": "fail", "target": "end"} in transitions(pumping)
    ids = [e.get("id") for e in root.iter() if e.get("id") and not e.tag.endswith("send")]
    assert len(ids) == len(set(ids))  # every state and region once


# --- get_statistics -----------------------------------------------------------------------------


def test_statistics_of_each_kind_of_machine() -> None:
    assert get_statistics(machine("flat")) == {
        "state_count": 5,
        "transition_count": 5,
        "terminal_state_count": 2,
        "initial_state": "pending",
        "terminal_states": ["delivered", "cancelled"],
        "trigger_count": 5,  # confirm, ship, deliver, cancel, the state timeout's ``timeout``
        "guard_count": 2,
        "action_count": 3,  # reserve_stock, refund, notify_customer
        "has_timeouts": True,
        "has_parallel_states": False,
        "has_hierarchical_states": False,
    }
    ticket = get_statistics(machine("hierarchical"))
    assert ticket["has_hierarchical_states"] and not ticket["has_parallel_states"]
    assert ticket["state_count"] == 9 and ticket["guard_count"] == 3
    desk = get_statistics(machine("parallel"))
    assert desk["has_parallel_states"] and not desk["has_hierarchical_states"]
    assert desk["state_count"] == 7 and not desk["has_timeouts"]
    rig = get_statistics(machine("nested"))
    assert rig["has_parallel_states"] and rig["has_hierarchical_states"]
    assert rig["terminal_states"] == ["end"] and rig["initial_state"] == "off"


def test_exports_accept_the_definition_as_well_as_the_machine() -> None:
    m = machine("nested")
    for export in (to_mermaid, to_mermaid_flowchart, to_dot, to_scxml, get_statistics):
        assert export(m.definition) == export(m)  # type: ignore[operator]


def test_mermaid_ids_stay_distinct_when_names_look_alike() -> None:
    m = machine("alike")
    shapes, _, links = read_flowchart(to_mermaid_flowchart(m))
    assert shapes == {"order_new": "([])", "order_new_2": "[]", "End_": "{{}}"}
    assert [(s, d) for s, _, _, d in links] == [
        ("order_new", "order_new_2"),
        ("order_new_2", "End_"),
    ]
    diagram = to_mermaid(m)
    assert 'state "order.new" as order_new' in diagram
    assert "order_new --> order_new_2 : a" in diagram and "order_new_2 --> End : b" in diagram
