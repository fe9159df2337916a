"""The SQL discovery stores (PostgreSQL and SQLite): the tables of migration 0007.

Every statement is in :mod:`pystator.stores.sql.discovery_queries`; this adapter turns the
discovery models into rows and back, and driver errors into :class:`StoreError`. Observations
are streamed back entity by entity (a server-side cursor on PostgreSQL), so building a candidate
from millions of rows holds one chunk of them at a time.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from datetime import datetime
from operator import itemgetter

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pystator.discovery.inference import EntityRun
from pystator.discovery.models import (
    BuiltDiscoveryCandidate,
    DiscoveryDraft,
    DraftMode,
    InferenceThresholds,
    InferredEdge,
    ObservedStateEvent,
)
from pystator.discovery.stores.base import MAX_ENTITY_IDS
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import DiscoveryError, StoreError
from pystator.stores.sql import discovery_queries as q
from pystator.stores.sql.engine import create_engine_from_url, is_sqlite, translate_errors

WHAT = "discovery store"
#: Attempts at numbering a candidate when concurrent builders of one machine collide.
CANDIDATE_NUMBER_ATTEMPTS = 5


class SqlDiscoveryStore:
    """A discovery store on a SQL database migrated to the newest schema (``pystator db
    upgrade``). Pass a ``url`` (the store owns its engine) or an ``engine`` (the caller does)."""

    def __init__(
        self, url: str | None = None, *, engine: Engine | None = None, clock: Clock = utc_now
    ) -> None:
        if (url is None) == (engine is None):
            raise ValueError("give either a url or an engine")
        self.engine = engine if engine is not None else create_engine_from_url(str(url))
        self._owns_engine = engine is None
        self._clock = clock

    # observations -------------------------------------------------------------------------------

    def add_observations(self, machine_name: str, events: Sequence[ObservedStateEvent]) -> int:
        """Insert ``events`` in one transaction; return how many were new."""
        rows = [
            q.ObservationValues(
                entity_id=e.entity_id,
                state=e.state,
                observed_at=e.observed_at,
                trigger=e.trigger,
                previous_state=e.previous_state,
                source=e.source,
                source_event_id=e.source_event_id,
            )
            for e in events
        ]
        if not rows:
            return 0
        with translate_errors(WHAT), self.engine.begin() as conn:
            return q.insert_observations(conn, machine_name, rows, self._clock())

    def observation_runs(
        self, machine_name: str, *, entity_ids: Sequence[str] | None = None
    ) -> Iterator[EntityRun]:
        """Each entity's observations ordered by ``(observed_at, arrival)``, streamed."""
        ids = _entity_ids(entity_ids)
        with translate_errors(WHAT), self.engine.connect() as conn:
            rows = q.stream_observations(conn, machine_name, entity_ids=ids)
            yield from runs_of(rows)

    def count_observations(self, machine_name: str) -> int:
        """How many observations ``machine_name`` has."""
        with translate_errors(WHAT), self.engine.connect() as conn:
            return q.count_observations(conn, machine_name)

    def observed_machines(self) -> list[str]:
        """Every machine name with observations, sorted."""
        with translate_errors(WHAT), self.engine.connect() as conn:
            return q.observed_machines(conn)

    def observed_entities(self, machine_name: str, *, limit: int = 1000) -> list[str]:
        """Up to ``limit`` entity ids of ``machine_name`` (sorted)."""
        with translate_errors(WHAT), self.engine.connect() as conn:
            return q.observed_entities(conn, machine_name, limit=limit)

    # candidates ---------------------------------------------------------------------------------

    def save_candidate(self, candidate: BuiltDiscoveryCandidate) -> BuiltDiscoveryCandidate:
        """Insert ``candidate`` as the next version of its machine (retried when a concurrent
        builder took the same number)."""
        for _attempt in range(CANDIDATE_NUMBER_ATTEMPTS):
            try:
                with translate_errors(WHAT), self.engine.begin() as conn:
                    version = q.insert_candidate(conn, _candidate_row(candidate, 0))
            except StoreError as exc:
                if isinstance(exc.__cause__, sa.exc.IntegrityError):
                    continue
                raise
            return dataclasses.replace(candidate, version=version)
        raise StoreError(
            f"could not number a candidate of {candidate.machine_name!r}: "
            f"{CANDIDATE_NUMBER_ATTEMPTS} concurrent builds collided"
        )

    def get_candidate(
        self, machine_name: str, version: int | None = None
    ) -> BuiltDiscoveryCandidate | None:
        """Candidate ``version`` (None: the latest) of ``machine_name``, or None."""
        with translate_errors(WHAT), self.engine.connect() as conn:
            row = q.get_candidate(conn, machine_name, version)
        return None if row is None else _candidate(row)

    def list_candidates(self, machine_name: str) -> list[BuiltDiscoveryCandidate]:
        """Every candidate of ``machine_name``, newest first."""
        with translate_errors(WHAT), self.engine.connect() as conn:
            return [_candidate(row) for row in q.list_candidates(conn, machine_name)]

    # drafts -------------------------------------------------------------------------------------

    def create_draft(self, draft: DiscoveryDraft) -> DiscoveryDraft:
        """Insert a new draft; return it with its id."""
        now = self._clock()
        row = _draft_row(draft, created_at=now, updated_at=now)
        with translate_errors(WHAT), self.engine.begin() as conn:
            draft_id = q.insert_draft(conn, row)
        return _draft(dataclasses.replace(row, id=draft_id))

    def get_draft(self, draft_id: int) -> DiscoveryDraft | None:
        """Draft ``draft_id``, or None."""
        with translate_errors(WHAT), self.engine.connect() as conn:
            row = q.get_draft(conn, draft_id)
        return None if row is None else _draft(row)

    def update_draft(self, draft: DiscoveryDraft) -> bool:
        """Overwrite draft ``draft.id`` (its machine and creation time stay)."""
        row = _draft_row(draft, created_at=draft.created_at, updated_at=self._clock())
        with translate_errors(WHAT), self.engine.begin() as conn:
            return q.update_draft(conn, row)

    def delete_draft(self, draft_id: int) -> bool:
        """Delete a draft; False when there was none."""
        with translate_errors(WHAT), self.engine.begin() as conn:
            return q.delete_draft(conn, draft_id)

    def list_drafts(self, machine_name: str) -> list[DiscoveryDraft]:
        """The drafts of ``machine_name``, oldest first."""
        with translate_errors(WHAT), self.engine.connect() as conn:
            return [_draft(row) for row in q.list_drafts(conn, machine_name)]

    def close(self) -> None:
        """Close the store's connections (only when it made its engine)."""
        if self._owns_engine:
            self.engine.dispose()


class PostgresDiscoveryStore(SqlDiscoveryStore):
    """The SQL discovery store on PostgreSQL."""


class SQLiteDiscoveryStore(SqlDiscoveryStore):
    """The SQL discovery store on SQLite."""

    def __init__(
        self, url: str | None = None, *, engine: Engine | None = None, clock: Clock = utc_now
    ) -> None:
        if url is not None and not is_sqlite(url):
            raise ValueError(f"not a SQLite URL: {url!r}")
        super().__init__(url, engine=engine, clock=clock)


def runs_of(rows: Iterator[q.StreamRow]) -> Iterator[EntityRun]:
    """Rows ordered by entity grouped into runs of ``(observed_at, seq, state, trigger,
    previous_state)``."""
    for entity, group in itertools.groupby(rows, key=itemgetter(0)):
        yield entity, (row[1:] for row in group)


def _entity_ids(entity_ids: Sequence[str] | None) -> list[str] | None:
    if entity_ids is None:
        return None
    ids = list(dict.fromkeys(str(e) for e in entity_ids))
    if len(ids) > MAX_ENTITY_IDS:
        raise DiscoveryError(f"at most {MAX_ENTITY_IDS} entity ids per read, got {len(ids)}")
    return ids


# --- rows <-> models ----------------------------------------------------------------------------


def _candidate_row(candidate: BuiltDiscoveryCandidate, version: int) -> q.CandidateRow:
    return q.CandidateRow(
        machine=candidate.machine_name,
        version=version,  # 0: numbered by the insert
        config=dict(candidate.config),
        edges=[e.to_dict() for e in candidate.edges],
        summary=candidate.summary(),
        draft_id=candidate.draft_id,
        created_by=candidate.created_by,
        created_at=candidate.created_at,
    )


def _candidate(row: q.CandidateRow) -> BuiltDiscoveryCandidate:
    summary = row.summary
    thresholds = summary.get("thresholds", {})
    return BuiltDiscoveryCandidate(
        machine_name=row.machine,
        version=row.version,
        config=row.config,
        edges=tuple(InferredEdge.from_dict(e) for e in row.edges),
        thresholds=InferenceThresholds(
            min_edge_count=int(thresholds.get("min_edge_count", 1)),
            min_confidence=float(thresholds.get("min_confidence", 0.0)),
        ),
        mode=DraftMode(summary.get("mode", DraftMode.INFERENCE.value)),
        source=str(summary.get("source", "observations")),
        observation_count=int(summary.get("observation_count", 0)),
        entity_count=int(summary.get("entity_count", 0)),
        late_count=int(summary.get("late_count", 0)),
        repeat_count=int(summary.get("repeat_count", 0)),
        initial_states={str(k): int(v) for k, v in summary.get("initial_states", {}).items()},
        initial_state=summary.get("initial_state"),
        terminal_states=tuple(summary.get("terminal_states", ())),
        never_left=tuple(summary.get("never_left", ())),
        trigger_names=str(summary.get("trigger_names", "derived")),
        draft_id=row.draft_id,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _draft_row(draft: DiscoveryDraft, *, created_at: datetime, updated_at: datetime) -> q.DraftRow:
    return q.DraftRow(
        id=draft.id,
        machine=draft.machine_name,
        title=draft.title,
        entity_ids=list(draft.selected_entity_ids),
        min_edge_count=draft.thresholds.min_edge_count,
        min_confidence=draft.thresholds.min_confidence,
        mode=draft.mode.value,
        edge_selection=[list(pair) for pair in draft.manual_edge_selection],
        last_built_version=draft.last_built_version,
        created_at=created_at,
        updated_at=updated_at,
    )


def _draft(row: q.DraftRow) -> DiscoveryDraft:
    return DiscoveryDraft(
        id=row.id,
        machine_name=row.machine,
        title=row.title,
        selected_entity_ids=tuple(row.entity_ids),
        thresholds=InferenceThresholds(
            min_edge_count=row.min_edge_count, min_confidence=row.min_confidence
        ),
        mode=DraftMode(row.mode),
        manual_edge_selection=tuple((a, b) for a, b in row.edge_selection),
        last_built_version=row.last_built_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


__all__ = ["PostgresDiscoveryStore", "SQLiteDiscoveryStore", "SqlDiscoveryStore", "runs_of"]
