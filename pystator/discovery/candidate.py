"""From inferred edges to a candidate: an ordinary machine definition, plus what was dropped.

The candidate's states are its initial state and every state a kept edge touches. The initial
state is the state most entities were first seen in (ties: name order); when no entity was seen
from its start (a history window that opens mid-life), it is the most observed state with no kept
edge into it, else the most observed state. A state with no kept exit becomes ``terminal``
(the initial state excepted). Each kept edge becomes one transition per trigger name it owns
(:func:`~pystator.discovery.inference.name_triggers`), carrying ``count``, ``confidence`` and
whether the name was derived in its ``metadata``. The definition is a pure function of the
counts, the thresholds and the mode, so building twice from the same data gives the same
definition (the machine registry then stores it once).
"""

from __future__ import annotations

from typing import Any

from pystator.discovery.inference import EdgeCounts, transition_triggers, trigger_owners
from pystator.discovery.models import (
    BuiltDiscoveryCandidate,
    DraftMode,
    InferenceThresholds,
    InferredEdge,
)
from pystator.fsm_core.errors import DiscoveryError

CONFIDENCE_DECIMALS = 6


def build_candidate(
    machine_name: str,
    counts: EdgeCounts,
    edges: tuple[InferredEdge, ...],
    *,
    thresholds: InferenceThresholds,
    mode: DraftMode = DraftMode.INFERENCE,
    source: str = "observations",
    draft_id: int | None = None,
    created_by: str = "",
) -> BuiltDiscoveryCandidate:
    """The candidate for ``edges`` (as :meth:`EdgeCounts.inferred_edges` returned them).

    :class:`DiscoveryError` when there was nothing observed at all.
    """
    if counts.observations == 0:
        raise DiscoveryError(f"no observations of machine {machine_name!r} to infer from")
    kept = [e for e in edges if e.kept]
    initial = _initial_state(counts, kept)
    states = _state_order(initial, kept)
    exits = {e.source_state for e in kept}
    terminal = tuple(s for s in states if s not in exits and s != initial)
    left = {source for source, _destination in counts.edges}
    transitions, naming = _transitions(kept)
    config = {
        "meta": {
            "machine_name": machine_name,
            "description": (
                f"Inferred from {counts.observations} observations of {counts.entities} "
                f"entities ({source})"
            ),
            "metadata": {
                "discovery": {
                    "source": source,
                    "mode": mode.value,
                    "thresholds": thresholds.to_dict(),
                    "observations": counts.observations,
                    "entities": counts.entities,
                    "dropped_edges": len(edges) - len(kept),
                    "trigger_names": naming,
                }
            },
        },
        "states": [_state(name, initial, terminal, counts) for name in states],
        "transitions": transitions,
    }
    return BuiltDiscoveryCandidate(
        machine_name=machine_name,
        config=config,
        edges=edges,
        thresholds=thresholds,
        mode=mode,
        source=source,
        observation_count=counts.observations,
        entity_count=counts.entities,
        late_count=counts.late,
        repeat_count=counts.repeats,
        initial_states=dict(sorted(counts.first_seen.items(), key=lambda kv: (-kv[1], kv[0]))),
        initial_state=initial,
        terminal_states=terminal,
        never_left=tuple(s for s in terminal if s not in left),
        trigger_names=naming,
        draft_id=draft_id,
        created_by=created_by,
    )


def _initial_state(counts: EdgeCounts, kept: list[InferredEdge]) -> str:
    if counts.first_seen:
        return min(counts.first_seen.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    entered = {e.destination_state for e in kept}
    candidates = {e.source_state for e in kept} - entered or set(counts.visits)
    return min(candidates, key=lambda s: (-counts.visits.get(s, 0), s))


def _state_order(initial: str, kept: list[InferredEdge]) -> list[str]:
    """Breadth first from the initial state along kept edges (busiest first), then the rest."""
    outgoing: dict[str, list[InferredEdge]] = {}
    for edge in kept:
        outgoing.setdefault(edge.source_state, []).append(edge)
    order = [initial]
    seen = {initial}
    for state in order:  # grows while it is walked
        for edge in sorted(outgoing.get(state, ()), key=lambda e: (-e.count, e.destination_state)):
            if edge.destination_state not in seen:
                seen.add(edge.destination_state)
                order.append(edge.destination_state)
    rest = {s for e in kept for s in e.pair} - seen
    return order + sorted(rest)


def _state(
    name: str, initial: str, terminal: tuple[str, ...], counts: EdgeCounts
) -> dict[str, Any]:
    kind = "initial" if name == initial else "terminal" if name in terminal else "stable"
    return {
        "name": name,
        "type": kind,
        "metadata": {
            "observations": counts.visits.get(name, 0),
            "first_seen": counts.first_seen.get(name, 0),
        },
    }


def _transitions(kept: list[InferredEdge]) -> tuple[list[dict[str, Any]], str]:
    owners = trigger_owners(kept)
    transitions = []
    derived = observed = 0
    for edge in kept:
        for trigger in transition_triggers(edge, owners):
            if edge.trigger_derived:
                derived += 1
            else:
                observed += 1
            transitions.append(_transition(edge, trigger))
    naming = "mixed" if derived and observed else "derived" if derived else "observed"
    return transitions, naming if transitions else "none"


def _transition(edge: InferredEdge, trigger: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "count": edge.count,
        "confidence": round(edge.confidence, CONFIDENCE_DECIMALS),
        "trigger_derived": edge.trigger_derived,
    }
    if not edge.trigger_derived:
        metadata["trigger_count"] = edge.triggers[trigger]
    return {
        "trigger": trigger,
        "source": edge.source_state,
        "dest": edge.destination_state,
        "metadata": metadata,
    }


__all__ = ["build_candidate"]
