"""Discovery: infer a candidate machine from the states entities were observed in.

Observations come from outside systems (:class:`ObservedStateEvent`, or raw records classified
by a machine's ``when`` rules through :class:`StateClassifier` and :class:`DataIngester`) or from
the fleet's own ``transition_history`` (:class:`TransitionHistorySource`, read in place).
:class:`InferenceEngine` counts the edges between consecutive states in one pass and builds a
:class:`BuiltDiscoveryCandidate`: an ordinary machine definition with each edge's count and
confidence, plus what the :class:`InferenceThresholds` dropped. Stores:
:func:`create_discovery_store` (in memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

from pystator.discovery.candidate import build_candidate
from pystator.discovery.classification import (
    ClassificationRuleSet,
    DataIngester,
    StateClassifier,
)
from pystator.discovery.inference import EdgeCounts
from pystator.discovery.models import (
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_EDGE_COUNT,
    BuiltDiscoveryCandidate,
    ClassificationResult,
    DiscoveryDraft,
    DraftMode,
    InferenceThresholds,
    InferredEdge,
    IngestError,
    IngestionResult,
    ObservedStateEvent,
    ShadowDiff,
)
from pystator.discovery.service import InferenceEngine
from pystator.discovery.sources import (
    ObservationSource,
    StoredObservations,
    TransitionHistorySource,
)
from pystator.discovery.stores import (
    CandidateStore,
    DiscoveryStore,
    DraftStore,
    InMemoryDiscoveryStore,
    ObservationStore,
    PostgresDiscoveryStore,
    SqlDiscoveryStore,
    SQLiteDiscoveryStore,
    create_discovery_store,
)
from pystator.fsm_core.classification import classify
from pystator.fsm_core.errors import DiscoveryError, InvalidObservationError

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_MIN_EDGE_COUNT",
    "BuiltDiscoveryCandidate",
    "CandidateStore",
    "ClassificationResult",
    "ClassificationRuleSet",
    "DataIngester",
    "DiscoveryDraft",
    "DiscoveryError",
    "DiscoveryStore",
    "DraftMode",
    "DraftStore",
    "EdgeCounts",
    "InMemoryDiscoveryStore",
    "InferenceEngine",
    "InferenceThresholds",
    "InferredEdge",
    "IngestError",
    "IngestionResult",
    "InvalidObservationError",
    "ObservationSource",
    "ObservationStore",
    "ObservedStateEvent",
    "PostgresDiscoveryStore",
    "SQLiteDiscoveryStore",
    "ShadowDiff",
    "SqlDiscoveryStore",
    "StateClassifier",
    "StoredObservations",
    "TransitionHistorySource",
    "build_candidate",
    "classify",
    "create_discovery_store",
]
