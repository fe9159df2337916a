"""The discovery service: record observations, infer edges, build candidates, manage drafts.

:class:`InferenceEngine` is what the Python API, and later the CLI and the HTTP API, call. It
holds no state of its own: observations, candidates and drafts live in the stores it is given.
A build reads its source once (:class:`~pystator.discovery.inference.EdgeCounts`), turns the
counts into a candidate (:func:`~pystator.discovery.candidate.build_candidate`), checks that the
candidate is a valid machine definition, and stores it as the machine's next candidate version.
A candidate never becomes an active machine by being built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from pystator.config.settings import Settings, load_settings
from pystator.discovery.candidate import build_candidate
from pystator.discovery.inference import Edge, EdgeCounts
from pystator.discovery.models import (
    BuiltDiscoveryCandidate,
    DiscoveryDraft,
    DraftMode,
    InferenceThresholds,
    InferredEdge,
    ObservedStateEvent,
)
from pystator.discovery.sources import ObservationSource, StoredObservations
from pystator.discovery.stores import (
    MAX_ENTITY_IDS,
    CandidateStore,
    DraftStore,
    ObservationStore,
    create_discovery_store,
)
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import (
    DiscoveryError,
    InvalidObservationError,
    MachineValidationError,
    NotFoundError,
)
from pystator.fsm_core.loading import load_definition
from pystator.fsm_core.naming import describe_name_problem
from pystator.stores.sql.schema import ENTITY_ID_LENGTH

MAX_TITLE_LENGTH = 200
#: Most edges a manual selection may name.
MAX_EDGE_SELECTION = 10_000


class InferenceEngine:
    """Discovery over three stores (usually one object playing all three parts).

    ``thresholds`` are the defaults of :meth:`infer` and :meth:`build_candidate`; a draft
    carries its own.
    """

    def __init__(
        self,
        observation_store: ObservationStore,
        candidate_store: CandidateStore | None = None,
        draft_store: DraftStore | None = None,
        *,
        thresholds: InferenceThresholds | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.observations = observation_store
        self.candidates: CandidateStore = candidate_store or _as(observation_store, CandidateStore)
        self.drafts: DraftStore = draft_store or _as(observation_store, DraftStore)
        self.thresholds = thresholds or InferenceThresholds()
        self._clock = clock

    @classmethod
    def from_app_config(
        cls,
        *,
        thresholds: InferenceThresholds | None = None,
        settings: Settings | None = None,
    ) -> InferenceEngine:
        """An engine on the configured discovery store (``PYSTATOR_DISCOVERY_DATABASE_URL``,
        else ``PYSTATOR_DATABASE_URL``; see :func:`create_discovery_store`) with the configured
        thresholds (``PYSTATOR_DISCOVERY_MIN_EDGE_COUNT`` / ``_MIN_CONFIDENCE``) unless given."""
        settings = settings or load_settings()
        store = create_discovery_store(settings=settings)
        thresholds = thresholds or InferenceThresholds(
            min_edge_count=settings.discovery_min_edge_count,
            min_confidence=settings.discovery_min_confidence,
        )
        return cls(store, store, store, thresholds=thresholds)

    # observations -------------------------------------------------------------------------------

    def record_observation(self, machine_name: str, event: ObservedStateEvent) -> bool:
        """Store one observation; False when it was a duplicate (same ``source_event_id``)."""
        return self.record_observations(machine_name, [event]) == 1

    def record_observations(self, machine_name: str, events: Sequence[ObservedStateEvent]) -> int:
        """Store observations of ``machine_name`` in their order (one write); return how many
        were new. :class:`InvalidObservationError` (nothing stored) when one is of another
        machine."""
        for event in events:
            if event.machine_name != machine_name:
                raise InvalidObservationError(
                    f"observation of machine {event.machine_name!r} recorded for {machine_name!r}"
                )
        return self.observations.add_observations(machine_name, events)

    # inference ----------------------------------------------------------------------------------

    def count(self, source: ObservationSource) -> EdgeCounts:
        """One pass over ``source``: its edge counts."""
        return EdgeCounts().add_runs(source.runs())

    def infer(
        self,
        machine_name: str,
        *,
        entity_ids: Sequence[str] | None = None,
        thresholds: InferenceThresholds | None = None,
        edge_selection: Iterable[Sequence[str]] | None = None,
    ) -> list[InferredEdge]:
        """Every edge observed for ``machine_name`` (of ``entity_ids`` only, when given), kept
        or dropped by ``thresholds`` (or, given ``edge_selection``, by that manual selection)."""
        source = StoredObservations(self.observations, machine_name, _scope(entity_ids))
        return self.infer_source(source, thresholds=thresholds, edge_selection=edge_selection)

    def infer_source(
        self,
        source: ObservationSource,
        *,
        thresholds: InferenceThresholds | None = None,
        edge_selection: Iterable[Sequence[str]] | None = None,
    ) -> list[InferredEdge]:
        """:meth:`infer` over any source (e.g. the fleet's transition history)."""
        selection = None if edge_selection is None else _selection(edge_selection)
        counts = self.count(source)
        return list(counts.inferred_edges(thresholds or self.thresholds, selection=selection))

    def build_candidate(
        self,
        machine_name: str,
        *,
        entity_ids: Sequence[str] | None = None,
        thresholds: InferenceThresholds | None = None,
        edge_selection: Iterable[Sequence[str]] | None = None,
        created_by: str = "",
    ) -> BuiltDiscoveryCandidate:
        """Infer from the stored observations of ``machine_name`` and store the candidate as its
        next version (mode ``manual`` when ``edge_selection`` is given)."""
        source = StoredObservations(self.observations, machine_name, _scope(entity_ids))
        return self.build_candidate_from(
            source, thresholds=thresholds, edge_selection=edge_selection, created_by=created_by
        )

    def build_candidate_from(
        self,
        source: ObservationSource,
        *,
        thresholds: InferenceThresholds | None = None,
        edge_selection: Iterable[Sequence[str]] | None = None,
        created_by: str = "",
        draft_id: int | None = None,
    ) -> BuiltDiscoveryCandidate:
        """Infer from ``source`` and store the candidate; :class:`DiscoveryError` when the
        source holds no observation."""
        thresholds = thresholds or self.thresholds
        selection = None if edge_selection is None else _selection(edge_selection)
        counts = self.count(source)
        candidate = build_candidate(
            source.machine_name,
            counts,
            counts.inferred_edges(thresholds, selection=selection),
            thresholds=thresholds,
            mode=DraftMode.INFERENCE if selection is None else DraftMode.MANUAL,
            source=source.label,
            draft_id=draft_id,
            created_by=created_by,
        )
        candidate = dataclasses.replace(candidate, created_at=self._clock())
        _check_definition(candidate)
        return self.candidates.save_candidate(candidate)

    def get_candidate(
        self, machine_name: str, version: int | None = None
    ) -> BuiltDiscoveryCandidate | None:
        """Candidate ``version`` (None: the latest) of ``machine_name``, or None."""
        return self.candidates.get_candidate(machine_name, version)

    def latest_candidate(self, machine_name: str) -> BuiltDiscoveryCandidate | None:
        """The newest candidate of ``machine_name``, or None."""
        return self.candidates.get_candidate(machine_name)

    def list_candidates(self, machine_name: str) -> list[BuiltDiscoveryCandidate]:
        """Every candidate of ``machine_name``, newest first."""
        return self.candidates.list_candidates(machine_name)

    # drafts -------------------------------------------------------------------------------------

    def create_draft(
        self,
        machine_name: str,
        *,
        title: str = "",
        entity_ids: Sequence[str] = (),
        thresholds: InferenceThresholds | None = None,
        mode: DraftMode | str = DraftMode.INFERENCE,
        manual_edges: Iterable[Sequence[str]] = (),
    ) -> DiscoveryDraft:
        """Save a new draft of ``machine_name``; :class:`DiscoveryError` on a bad value."""
        _name(machine_name, "machine name")
        draft = DiscoveryDraft(
            machine_name=machine_name,
            title=_title(title),
            selected_entity_ids=_entities(entity_ids),
            thresholds=thresholds or self.thresholds,
            mode=_mode(mode),
            manual_edge_selection=tuple(sorted(_selection(manual_edges))),
        )
        return self.drafts.create_draft(draft)

    def get_draft(self, draft_id: int) -> DiscoveryDraft:
        """Draft ``draft_id``; :class:`NotFoundError` when there is none."""
        draft = self.drafts.get_draft(draft_id)
        if draft is None:
            raise NotFoundError(f"no discovery draft {draft_id}", details={"draft_id": draft_id})
        return draft

    def list_drafts(self, machine_name: str) -> list[DiscoveryDraft]:
        """The drafts of ``machine_name``, oldest first."""
        return self.drafts.list_drafts(machine_name)

    def update_draft(
        self,
        draft_id: int,
        *,
        title: str | None = None,
        entity_ids: Sequence[str] | None = None,
        thresholds: InferenceThresholds | None = None,
        mode: DraftMode | str | None = None,
        manual_edges: Iterable[Sequence[str]] | None = None,
    ) -> DiscoveryDraft:
        """Change the given parts of a draft; return it as stored."""
        draft = self.get_draft(draft_id)
        changes: dict[str, Any] = {}
        if title is not None:
            changes["title"] = _title(title)
        if entity_ids is not None:
            changes["selected_entity_ids"] = _entities(entity_ids)
        if thresholds is not None:
            changes["thresholds"] = thresholds
        if mode is not None:
            changes["mode"] = _mode(mode)
        if manual_edges is not None:
            changes["manual_edge_selection"] = tuple(sorted(_selection(manual_edges)))
        if not self.drafts.update_draft(dataclasses.replace(draft, **changes)):
            raise NotFoundError(f"no discovery draft {draft_id}", details={"draft_id": draft_id})
        return self.get_draft(draft_id)

    def delete_draft(self, draft_id: int) -> None:
        """Delete a draft; :class:`NotFoundError` when there is none."""
        if not self.drafts.delete_draft(draft_id):
            raise NotFoundError(f"no discovery draft {draft_id}", details={"draft_id": draft_id})

    def preview_edges_for_draft(self, draft_id: int) -> list[InferredEdge]:
        """The edges a build of the draft would keep and drop, from the draft's scope only."""
        draft = self._scoped(draft_id)
        return self.infer(
            draft.machine_name,
            entity_ids=draft.selected_entity_ids,
            thresholds=draft.thresholds,
            edge_selection=_draft_selection(draft),
        )

    def build_candidate_from_draft(
        self, draft_id: int, *, created_by: str = ""
    ) -> BuiltDiscoveryCandidate:
        """Build and store a candidate from the draft's scope; the draft records the version."""
        draft = self._scoped(draft_id)
        source = StoredObservations(
            self.observations, draft.machine_name, draft.selected_entity_ids
        )
        candidate = self.build_candidate_from(
            source,
            thresholds=draft.thresholds,
            edge_selection=_draft_selection(draft),
            created_by=created_by,
            draft_id=draft.id,
        )
        self.drafts.update_draft(dataclasses.replace(draft, last_built_version=candidate.version))
        return candidate

    def _scoped(self, draft_id: int) -> DiscoveryDraft:
        draft = self.get_draft(draft_id)
        if not draft.selected_entity_ids:
            raise DiscoveryError(
                f"draft {draft_id} selects no entities: a draft's preview and build read only "
                "its selected entity ids",
                details={"draft_id": draft_id},
            )
        return draft


def _as(store: object, kind: type[Any]) -> Any:
    if not isinstance(store, kind):
        raise TypeError(f"{type(store).__name__} is not a {kind.__name__}: pass one explicitly")
    return store


def _check_definition(candidate: BuiltDiscoveryCandidate) -> None:
    """A candidate must load like any machine definition (a failure here is a bug)."""
    try:
        load_definition(candidate.config, source=f"<candidate of {candidate.machine_name}>")
    except MachineValidationError as exc:
        raise DiscoveryError(f"the inferred candidate is not a valid machine: {exc}") from exc


def _draft_selection(draft: DiscoveryDraft) -> list[tuple[str, str]] | None:
    return list(draft.manual_edge_selection) if draft.mode is DraftMode.MANUAL else None


def _scope(entity_ids: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if entity_ids is None else _entities(entity_ids)


def _entities(entity_ids: Sequence[str]) -> tuple[str, ...]:
    if isinstance(entity_ids, str):
        raise DiscoveryError("entity_ids must be a list of entity ids, not one string")
    ids = tuple(dict.fromkeys(entity_ids))
    if len(ids) > MAX_ENTITY_IDS:
        raise DiscoveryError(f"at most {MAX_ENTITY_IDS} entity ids, got {len(ids)}")
    for entity in ids:
        if not isinstance(entity, str) or not entity or len(entity) > ENTITY_ID_LENGTH:
            raise DiscoveryError(
                f"an entity id must be a string of 1 to {ENTITY_ID_LENGTH} characters: {entity!r}"
            )
    return ids


def _selection(edges: Iterable[Sequence[str]]) -> set[Edge]:
    selected: set[Edge] = set()
    for edge in edges:
        if isinstance(edge, str) or len(edge) != 2:
            raise DiscoveryError(f"an edge is a [source, destination] pair, got {edge!r}")
        source, destination = edge
        _name(source, "state name")
        _name(destination, "state name")
        selected.add((source, destination))
        if len(selected) > MAX_EDGE_SELECTION:
            raise DiscoveryError(f"at most {MAX_EDGE_SELECTION} edges may be selected")
    return selected


def _name(value: Any, what: str) -> None:
    problem = describe_name_problem(value, what)
    if problem is not None:
        raise DiscoveryError(problem)


def _title(title: Any) -> str:
    if not isinstance(title, str) or len(title) > MAX_TITLE_LENGTH:
        raise DiscoveryError(f"a title must be a string of at most {MAX_TITLE_LENGTH} characters")
    return title


def _mode(mode: DraftMode | str) -> DraftMode:
    try:
        return DraftMode(mode)
    except ValueError:
        modes = ", ".join(m.value for m in DraftMode)
        raise DiscoveryError(f"mode must be one of {modes}, got {mode!r}") from None


__all__ = ["InferenceEngine", "InferenceThresholds"]
