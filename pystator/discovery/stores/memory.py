"""The in-memory discovery store: for tests, notebooks and embedded use (lost on exit).

Observations are kept per machine and entity as compact tuples in arrival order. An entity whose
observations arrive in time order (the usual case) is never sorted; one that received a late
observation is sorted by ``(observed_at, arrival)`` once, when it is next read. Thread-safe.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence

from pystator.discovery.inference import EntityRun, ObservationRow
from pystator.discovery.models import BuiltDiscoveryCandidate, DiscoveryDraft, ObservedStateEvent
from pystator.fsm_core.clock import Clock, utc_now


class InMemoryDiscoveryStore:
    """Observations, candidates and drafts in process memory."""

    def __init__(self, *, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, list[ObservationRow]]] = {}
        self._entities: dict[str, list[str]] = {}  # per machine, in first-seen order
        self._unsorted: dict[str, set[str]] = {}
        self._keys: dict[str, set[tuple[str, str]]] = {}
        self._arrivals = 0
        self._candidates: dict[str, list[BuiltDiscoveryCandidate]] = {}
        self._drafts: dict[int, DiscoveryDraft] = {}
        self._next_draft = 1

    # observations -------------------------------------------------------------------------------

    def add_observations(self, machine_name: str, events: Sequence[ObservedStateEvent]) -> int:
        """Keep ``events`` in their order; return how many were new."""
        with self._lock:
            runs = self._runs.setdefault(machine_name, {})
            entities = self._entities.setdefault(machine_name, [])
            unsorted = self._unsorted.setdefault(machine_name, set())
            keys = self._keys.setdefault(machine_name, set())
            added = 0
            for event in events:
                if event.source_event_id is not None:
                    key = (event.source, event.source_event_id)
                    if key in keys:
                        continue
                    keys.add(key)
                self._arrivals += 1
                row = (
                    event.observed_at,
                    self._arrivals,
                    event.state,
                    event.trigger,
                    event.previous_state,
                )
                run = runs.get(event.entity_id)
                if run is None:
                    runs[event.entity_id] = [row]
                    entities.append(event.entity_id)
                else:
                    if row[0] < run[-1][0]:
                        unsorted.add(event.entity_id)
                    run.append(row)
                added += 1
            return added

    def observation_runs(
        self, machine_name: str, *, entity_ids: Sequence[str] | None = None
    ) -> Iterator[EntityRun]:
        """Each entity's observations ordered by ``(observed_at, arrival)``; a snapshot per
        entity (observations added meanwhile to an entity already read are not seen). Walks the
        store's own entity list: no copy of it, so reading costs one entity's run at a time."""
        with self._lock:
            runs = self._runs.get(machine_name, {})
            names = self._entities.get(machine_name, [])
            if entity_ids is not None:
                names = [e for e in dict.fromkeys(entity_ids) if e in runs]
        index = 0
        while True:
            with self._lock:
                if index >= len(names):  # entities added meanwhile are read too
                    return
                entity = names[index]
                run = runs[entity]
                unsorted = self._unsorted.get(machine_name, set())
                if entity in unsorted:
                    run.sort()
                    unsorted.discard(entity)
                snapshot = run[:]
            index += 1
            yield entity, snapshot

    def count_observations(self, machine_name: str) -> int:
        """How many observations ``machine_name`` has."""
        with self._lock:
            return sum(len(run) for run in self._runs.get(machine_name, {}).values())

    def observed_machines(self) -> list[str]:
        """Every machine name with observations, sorted."""
        with self._lock:
            return sorted(name for name, runs in self._runs.items() if runs)

    def observed_entities(self, machine_name: str, *, limit: int = 1000) -> list[str]:
        """Up to ``limit`` entity ids of ``machine_name`` (sorted)."""
        with self._lock:
            return sorted(self._runs.get(machine_name, {}))[:limit]

    # candidates ---------------------------------------------------------------------------------

    def save_candidate(self, candidate: BuiltDiscoveryCandidate) -> BuiltDiscoveryCandidate:
        """Keep ``candidate`` as the next version of its machine."""
        with self._lock:
            versions = self._candidates.setdefault(candidate.machine_name, [])
            stored = dataclasses.replace(candidate, version=len(versions) + 1)
            versions.append(stored)
            return stored

    def get_candidate(
        self, machine_name: str, version: int | None = None
    ) -> BuiltDiscoveryCandidate | None:
        """Candidate ``version`` (None: the latest) of ``machine_name``, or None."""
        with self._lock:
            versions = self._candidates.get(machine_name, [])
            if version is None:
                return versions[-1] if versions else None
            return versions[version - 1] if 1 <= version <= len(versions) else None

    def list_candidates(self, machine_name: str) -> list[BuiltDiscoveryCandidate]:
        """Every candidate of ``machine_name``, newest first."""
        with self._lock:
            return list(reversed(self._candidates.get(machine_name, [])))

    # drafts -------------------------------------------------------------------------------------

    def create_draft(self, draft: DiscoveryDraft) -> DiscoveryDraft:
        """Keep a new draft with the next id."""
        with self._lock:
            now = self._clock()
            stored = dataclasses.replace(draft, id=self._next_draft, created_at=now, updated_at=now)
            self._drafts[stored.id] = stored
            self._next_draft += 1
            return stored

    def get_draft(self, draft_id: int) -> DiscoveryDraft | None:
        """Draft ``draft_id``, or None."""
        with self._lock:
            return self._drafts.get(draft_id)

    def update_draft(self, draft: DiscoveryDraft) -> bool:
        """Overwrite draft ``draft.id`` (its machine and creation time stay)."""
        with self._lock:
            current = self._drafts.get(draft.id)
            if current is None:
                return False
            self._drafts[draft.id] = dataclasses.replace(
                draft,
                machine_name=current.machine_name,
                created_at=current.created_at,
                updated_at=self._clock(),
            )
            return True

    def delete_draft(self, draft_id: int) -> bool:
        """Forget a draft; False when there was none."""
        with self._lock:
            return self._drafts.pop(draft_id, None) is not None

    def list_drafts(self, machine_name: str) -> list[DiscoveryDraft]:
        """The drafts of ``machine_name``, oldest first."""
        with self._lock:
            return [d for _, d in sorted(self._drafts.items()) if d.machine_name == machine_name]

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["InMemoryDiscoveryStore"]
