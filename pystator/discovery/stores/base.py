"""What a discovery store does: keep observations, candidates and drafts of machines.

One object usually plays all three parts (:class:`DiscoveryStore`); :class:`InferenceEngine
<pystator.discovery.InferenceEngine>` takes the three separately so each can live elsewhere.
Observations are read back as *runs* (one entity's observations ordered by ``observed_at``, ties by
arrival), entity after entity, without loading a machine's observations at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from pystator.discovery.inference import EntityRun
from pystator.discovery.models import BuiltDiscoveryCandidate, DiscoveryDraft, ObservedStateEvent

#: Most entity ids one read (a draft's scope) may name.
MAX_ENTITY_IDS = 10_000


@runtime_checkable
class ObservationStore(Protocol):
    """Where observations are kept."""

    def add_observations(self, machine_name: str, events: Sequence[ObservedStateEvent]) -> int:
        """Store ``events`` of ``machine_name`` in their order; return how many were new (one
        whose ``(source, source_event_id)`` is stored already is skipped)."""
        ...

    def observation_runs(
        self, machine_name: str, *, entity_ids: Sequence[str] | None = None
    ) -> Iterator[EntityRun]:
        """The observations of ``machine_name`` (of ``entity_ids`` only, when given) as runs."""
        ...

    def count_observations(self, machine_name: str) -> int:
        """How many observations ``machine_name`` has."""
        ...

    def observed_machines(self) -> list[str]:
        """Every machine name with observations, sorted."""
        ...

    def observed_entities(self, machine_name: str, *, limit: int = 1000) -> list[str]:
        """Up to ``limit`` entity ids of ``machine_name`` (sorted)."""
        ...


@runtime_checkable
class CandidateStore(Protocol):
    """Where built candidates are kept, numbered per machine."""

    def save_candidate(self, candidate: BuiltDiscoveryCandidate) -> BuiltDiscoveryCandidate:
        """Store ``candidate`` as the next version of its machine; return it with that version."""
        ...

    def get_candidate(
        self, machine_name: str, version: int | None = None
    ) -> BuiltDiscoveryCandidate | None:
        """Candidate ``version`` (None: the latest) of ``machine_name``, or None."""
        ...

    def list_candidates(self, machine_name: str) -> list[BuiltDiscoveryCandidate]:
        """Every candidate of ``machine_name``, newest first."""
        ...


@runtime_checkable
class DraftStore(Protocol):
    """Where discovery drafts are kept."""

    def create_draft(self, draft: DiscoveryDraft) -> DiscoveryDraft:
        """Store a new draft; return it with its id."""
        ...

    def get_draft(self, draft_id: int) -> DiscoveryDraft | None:
        """Draft ``draft_id``, or None."""
        ...

    def update_draft(self, draft: DiscoveryDraft) -> bool:
        """Overwrite draft ``draft.id``; False when it does not exist."""
        ...

    def delete_draft(self, draft_id: int) -> bool:
        """Delete a draft; False when it did not exist."""
        ...

    def list_drafts(self, machine_name: str) -> list[DiscoveryDraft]:
        """The drafts of ``machine_name``, oldest first."""
        ...


@runtime_checkable
class DiscoveryStore(ObservationStore, CandidateStore, DraftStore, Protocol):
    """Observations, candidates and drafts in one place."""

    def close(self) -> None:
        """Release connections (a no-op for the in-memory store)."""
        ...


__all__ = [
    "MAX_ENTITY_IDS",
    "CandidateStore",
    "DiscoveryStore",
    "DraftStore",
    "ObservationStore",
]
