"""From raw data records to observations: :class:`StateClassifier` and :class:`DataIngester`.

The classifier applies a machine's ``when`` rules (the engine's
:class:`~pystator.fsm_core.classification.ClassificationRules`: first matching state in
definition order, else ``meta.classification.default_state``). The ingester reads each record's
entity id and time from the fields ``meta.classification`` names, classifies it, and records the
observation. A malformed record is counted as an error with its reason and never stops a batch.

Record times: an aware or naive ``datetime`` (naive is UTC), an ISO 8601 string, or seconds
since the epoch; a record without the timestamp field (or with null) is stamped with the time it
is ingested.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pystator.discovery.models import (
    ClassificationResult,
    IngestError,
    IngestionResult,
    ObservedStateEvent,
)
from pystator.discovery.service import InferenceEngine
from pystator.fsm_core.classification import ClassificationRules, RulesSource, rules_of
from pystator.fsm_core.clock import Clock, utc_now
from pystator.fsm_core.errors import InvalidObservationError

#: Records classified before their observations are written (one store write per chunk).
DEFAULT_CHUNK_SIZE = 1000
#: Reasons an :class:`IngestionResult` keeps (the count covers every error).
MAX_ERROR_DETAILS = 100

#: The documented name of a rule set built without a machine.
ClassificationRuleSet = ClassificationRules


class StateClassifier:
    """Classifies data records into states with a machine's ``when`` rules."""

    def __init__(self, rules: ClassificationRules) -> None:
        self.rules = rules

    @classmethod
    def from_machine(cls, machine: RulesSource) -> StateClassifier:
        """The classifier of a machine (or a definition, or rules)."""
        return cls(rules_of(machine))

    def classify(self, record: Mapping[str, Any]) -> ClassificationResult:
        """The state ``record`` is in: ``matched`` when a ``when`` rule chose it (False: the
        default state, or None when there is no default)."""
        state = self.rules.match(record)
        if state is not None:
            return ClassificationResult(state=state, matched=True, record=record)
        return ClassificationResult(state=self.rules.default_state, matched=False, record=record)


class DataIngester:
    """Classifies records and records them as observations of ``machine_name``.

    ``event_id_field`` names a record field whose value becomes the observation's
    ``source_event_id`` (a re-sent record is then stored once).
    """

    def __init__(
        self,
        classifier: StateClassifier,
        engine: InferenceEngine,
        machine_name: str,
        *,
        event_id_field: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        clock: Clock = utc_now,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.classifier = classifier
        self.engine = engine
        self.machine_name = machine_name
        self.event_id_field = event_id_field
        self.chunk_size = chunk_size
        self._clock = clock

    def observe(self, record: Any) -> tuple[ClassificationResult, ObservedStateEvent | None]:
        """Classify ``record`` and build its observation (None when it has no state); nothing
        is stored. :class:`InvalidObservationError` for a malformed record."""
        if not isinstance(record, Mapping):
            raise InvalidObservationError(
                f"a record must be a mapping (a JSON object), got {type(record).__name__}"
            )
        rules = self.classifier.rules
        entity_id = _entity_id(record, rules.entity_id_field)
        observed_at = _timestamp(record, rules.timestamp_field, self._clock)
        try:
            result = self.classifier.classify(record)
        except (TypeError, ValueError) as exc:  # a record value whose comparison raises
            raise InvalidObservationError(f"cannot classify the record: {exc}") from exc
        if result.state is None:
            return result, None
        event = ObservedStateEvent(
            entity_id=entity_id,
            machine_name=self.machine_name,
            state=result.state,
            observed_at=observed_at,
            source=rules.source,
            source_event_id=_event_id(record, self.event_id_field),
        )
        return result, event

    def ingest_record(self, record: Mapping[str, Any]) -> ClassificationResult:
        """Classify and record one record; :class:`InvalidObservationError` when malformed."""
        result, event = self.observe(record)
        if event is not None:
            self.engine.record_observation(self.machine_name, event)
        return result

    def ingest_batch(self, records: Iterable[Any]) -> IngestionResult:
        """Classify and record every record; malformed ones are counted (with their reason and
        position) and skipped. Observations are written in chunks of ``chunk_size``: a store
        failure raises after the chunks before it were stored (re-sending is safe with
        ``event_id_field``)."""
        total = classified = skipped = accepted = 0
        errors: list[IngestError] = []
        error_count = 0
        pending: list[ObservedStateEvent] = []
        for index, record in enumerate(records):
            total += 1
            try:
                _result, event = self.observe(record)
            except InvalidObservationError as exc:
                error_count += 1
                if len(errors) < MAX_ERROR_DETAILS:
                    errors.append(IngestError(index=index, reason=exc.message))
                continue
            if event is None:
                skipped += 1
                continue
            classified += 1
            pending.append(event)
            if len(pending) >= self.chunk_size:
                accepted += self.engine.record_observations(self.machine_name, pending)
                pending = []
        if pending:
            accepted += self.engine.record_observations(self.machine_name, pending)
        return IngestionResult(
            total=total,
            accepted=accepted,
            classified=classified,
            skipped=skipped,
            errors=error_count,
            duplicates=classified - accepted,
            error_details=tuple(errors),
        )


def _entity_id(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise InvalidObservationError(
            f"the record has no entity id in field {field!r} (a string or an integer)"
        )
    return str(value)


def _timestamp(record: Mapping[str, Any], field: str | None, clock: Clock) -> datetime:
    value = None if field is None else record.get(field)
    if value is None:
        return clock()
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return time_of(value, f"field {field!r}")


def time_of(value: Any, label: str) -> datetime:
    """A time from ISO 8601 text (naive: UTC) or seconds since the epoch;
    :class:`InvalidObservationError` naming ``label`` otherwise."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidObservationError(
                f"{label}: {value[:40]!r} is not an ISO 8601 time"
            ) from None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise InvalidObservationError(
        f"{label}: {value!r:.40} is not a time (ISO 8601 text or seconds since the epoch)"
    )


def _event_id(record: Mapping[str, Any], field: str | None) -> str | None:
    if field is None:
        return None
    value = record.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidObservationError(f"field {field!r}: an event id is a string or an integer")
    return str(value)


__all__ = [
    "ClassificationResult",
    "ClassificationRuleSet",
    "DataIngester",
    "StateClassifier",
]
