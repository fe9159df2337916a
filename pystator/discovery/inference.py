"""Directly-follows inference in one pass: edges, counts, confidence, first-seen states.

The input is a stream of *runs*: one entity's observations in order (the stores read them ordered
by ``observed_at`` with ties broken by arrival; the fleet's history by version). One pass keeps
only counters, so memory is bounded by the number of distinct edges (at most states²) and their
trigger names, never by the number of observations — a run is consumed as it is read.

Within a run, each observation after the first makes an edge from the state before it (or from
its ``previous_state``, when the source names it) to its own state. The same state again without
a trigger is a *repeat* (the entity stayed; no edge); with a trigger it is a self-transition.
An entity's first observation without a ``previous_state`` counts as *first seen* in its state.

``confidence(a → b) = count(a → b) / Σₓ count(a → x)``: the share of the exits observed from
``a`` that went to ``b``. An edge is kept when ``count >= min_edge_count`` and
``confidence >= min_confidence`` (or, in manual mode, exactly when it is selected).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import TypeAlias

from pystator.discovery.models import InferenceThresholds, InferredEdge
from pystator.fsm_core.limits import MAX_NAME_LENGTH

#: ``(observed_at, seq, state, trigger, previous_state)``; ``seq`` is the arrival order.
ObservationRow: TypeAlias = tuple[datetime, int, str, str | None, str | None]
#: One entity's observations, in order.
EntityRun: TypeAlias = tuple[str, Iterable[ObservationRow]]
Edge: TypeAlias = tuple[str, str]

DERIVED_TRIGGER_PREFIX = "to_"


class EdgeCounts:
    """The counters of one inference pass (feed it with :meth:`add_run` / :meth:`add_runs`).

    ``edges`` maps ``(source, destination)`` to its count, ``triggers`` each edge to the counts
    of the trigger names observed on it, ``first_seen`` each state to the entities first seen
    there, ``visits`` each state to its observations. ``late`` counts observations that arrived
    after the entity's next observation in time (they were placed by their time; one per late
    arrival when late arrivals are rare), ``repeats`` observations of the state an entity was
    already in.
    """

    __slots__ = (
        "edges",
        "entities",
        "first_seen",
        "late",
        "observations",
        "repeats",
        "triggers",
        "visits",
    )

    def __init__(self) -> None:
        self.edges: dict[Edge, int] = {}
        self.triggers: dict[Edge, dict[str, int]] = {}
        self.first_seen: dict[str, int] = {}
        self.visits: dict[str, int] = {}
        self.observations = 0
        self.entities = 0
        self.late = 0
        self.repeats = 0

    def add_runs(self, runs: Iterable[EntityRun]) -> EdgeCounts:
        """Count every run; returns ``self``."""
        for _entity, rows in runs:
            self.add_run(rows)
        return self

    def add_run(self, rows: Iterable[ObservationRow]) -> None:
        """Count one entity's observations (in order)."""
        edges, visits = self.edges, self.visits
        before: str | None = None
        last_seq = -1
        seen = 0
        for _at, seq, state, trigger, previous in rows:
            seen += 1
            visits[state] = visits.get(state, 0) + 1
            if seq < last_seq:  # the observation before this one (in time) arrived after it
                self.late += 1
            last_seq = seq
            source = before if previous is None else previous
            before = state
            if source is None:
                self.first_seen[state] = self.first_seen.get(state, 0) + 1
            elif source == state and trigger is None:
                self.repeats += 1
            else:
                edge = (source, state)
                edges[edge] = edges.get(edge, 0) + 1
                if trigger is not None:
                    names = self.triggers.setdefault(edge, {})
                    names[trigger] = names.get(trigger, 0) + 1
        if seen:
            self.observations += seen
            self.entities += 1

    def exits(self) -> dict[str, int]:
        """Per source state, how many exits were observed (the denominator of confidence)."""
        out: dict[str, int] = {}
        for (source, _destination), count in self.edges.items():
            out[source] = out.get(source, 0) + count
        return out

    def inferred_edges(
        self,
        thresholds: InferenceThresholds,
        *,
        selection: Collection[Edge] | None = None,
    ) -> tuple[InferredEdge, ...]:
        """Every observed edge with its confidence, kept or dropped (with the reason), and the
        trigger names a candidate gives it; ordered by source state, then count (descending).
        ``selection`` (manual mode) keeps exactly the selected edges, whatever the thresholds."""
        exits = self.exits()
        edges = []
        for (source, destination), count in sorted(
            self.edges.items(), key=lambda item: (item[0][0], -item[1], item[0][1])
        ):
            confidence = count / exits[source]
            reason = _drop_reason(count, confidence, thresholds, selection, (source, destination))
            observed = self.triggers.get((source, destination), {})
            edges.append(
                InferredEdge(
                    source_state=source,
                    destination_state=destination,
                    count=count,
                    confidence=confidence,
                    triggers=dict(sorted(observed.items(), key=lambda kv: (-kv[1], kv[0]))),
                    kept=reason is None,
                    reason=reason,
                )
            )
        return name_triggers(edges)


def _drop_reason(
    count: int,
    confidence: float,
    thresholds: InferenceThresholds,
    selection: Collection[Edge] | None,
    edge: Edge,
) -> str | None:
    if selection is not None:
        return None if edge in selection else "not in the manual selection"
    reasons = []
    if count < thresholds.min_edge_count:
        reasons.append(f"count {count} < min_edge_count {thresholds.min_edge_count}")
    if confidence < thresholds.min_confidence:
        reasons.append(f"confidence {confidence:.4g} < min_confidence {thresholds.min_confidence}")
    return "; ".join(reasons) or None


# --- trigger names ------------------------------------------------------------------------------


def transition_triggers(edge: InferredEdge, owners: dict[tuple[str, str], str]) -> list[str]:
    """The trigger names the candidate's transitions of a kept ``edge`` use (see
    :func:`name_triggers`); ``owners`` maps ``(source, trigger)`` to its destination."""
    source, destination = edge.source_state, edge.destination_state
    names = [t for t in edge.triggers if owners.get((source, t)) == destination]
    if names or not edge.trigger_derived or edge.trigger is None:
        return names
    return [edge.trigger]


def trigger_owners(edges: Iterable[InferredEdge]) -> dict[tuple[str, str], str]:
    """For the kept edges: which destination each ``(source, observed trigger)`` leads to. A
    trigger observed towards several destinations of one source goes to the destination it was
    observed towards most often (ties: the destination's name), so the candidate stays
    deterministic."""
    best: dict[tuple[str, str], tuple[int, str]] = {}  # the smallest (-count, destination)
    for edge in edges:
        if not edge.kept:
            continue
        for name, count in edge.triggers.items():
            key = (edge.source_state, name)
            rank = (-count, edge.destination_state)
            if key not in best or rank < best[key]:
                best[key] = rank
    return {key: destination for key, (_count, destination) in best.items()}


def name_triggers(edges: list[InferredEdge]) -> tuple[InferredEdge, ...]:
    """Give every edge the trigger name a candidate uses for it.

    A kept edge uses the most frequent trigger observed on it that no other destination of the
    same source owns (:func:`trigger_owners`); one with none gets a stable derived name,
    ``to_<destination>`` (``_2``, ``_3`` … appended if that name is taken from that source), and
    is marked ``trigger_derived``. A dropped edge shows its most frequent observed trigger, or
    the derived name.
    """
    owners = trigger_owners(edges)
    taken: dict[str, set[str]] = {}
    for (source, name), _destination in owners.items():
        taken.setdefault(source, set()).add(name)
    named = []
    for edge in edges:
        if not edge.kept:
            first = next(iter(edge.triggers), None)
            trigger = first or _derived(edge.destination_state, set())
            named.append(dataclasses.replace(edge, trigger=trigger, trigger_derived=first is None))
            continue
        own = transition_triggers(edge, owners)
        if own:
            named.append(dataclasses.replace(edge, trigger=own[0], trigger_derived=False))
            continue
        used = taken.setdefault(edge.source_state, set())
        trigger = _derived(edge.destination_state, used)
        used.add(trigger)
        named.append(dataclasses.replace(edge, trigger=trigger, trigger_derived=True))
    return tuple(named)


def _derived(destination: str, used: set[str]) -> str:
    base = (DERIVED_TRIGGER_PREFIX + destination)[: MAX_NAME_LENGTH - 8]
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    return name


__all__ = [
    "DERIVED_TRIGGER_PREFIX",
    "EdgeCounts",
    "EntityRun",
    "ObservationRow",
    "name_triggers",
    "transition_triggers",
    "trigger_owners",
]
