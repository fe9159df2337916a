"""Where inference reads observations from: a discovery store, or the fleet's own history.

A source gives *runs* (one entity's observations in order, entity after entity) and a label the
candidate records. :class:`TransitionHistorySource` reads ``transition_history`` in place, in
``(entity, version)`` order, streamed: no copy into the discovery tables, and memory that does not
grow with the window. Each history row is an observation of the state entered, with the trigger
that entered it and the state it left; a window that opens in the middle of an entity's life
thus starts it with an explicit edge, never a false first sighting. The row that created an
entity names no state it left: given the machine's ``initial_state``, a creation by a trigger is
read as the entity first seen in the initial state and moved by that trigger (the fleet creates
an entity by applying its first event to the initial state); without it, the entity counts as
first seen in the state it was created in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine

from pystator.discovery.inference import EntityRun, ObservationRow
from pystator.discovery.stores.base import ObservationStore
from pystator.discovery.stores.sql import runs_of
from pystator.stores.sql.discovery_queries import stream_history
from pystator.stores.sql.engine import translate_errors

HISTORY_SOURCE = "transition_history"
OBSERVATIONS_SOURCE = "observations"


class ObservationSource(Protocol):
    """Observations of one machine, as runs."""

    @property
    def machine_name(self) -> str: ...

    @property
    def label(self) -> str:
        """What the candidate records as its source."""
        ...

    def runs(self) -> Iterator[EntityRun]:
        """Each entity's observations in order."""
        ...


@dataclass(frozen=True, slots=True)
class StoredObservations:
    """The observations a store holds for a machine (of ``entity_ids`` only, when given)."""

    store: ObservationStore
    machine_name: str
    entity_ids: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        """``observations``."""
        return OBSERVATIONS_SOURCE

    def runs(self) -> Iterator[EntityRun]:
        """The store's runs."""
        return self.store.observation_runs(self.machine_name, entity_ids=self.entity_ids)


@dataclass(frozen=True, slots=True)
class TransitionHistorySource:
    """The transitions the fleet applied to ``machine_name`` in ``[since, until)`` (either
    bound optional), of ``entity_ids`` only when given, read from the fleet database ``engine``.
    ``initial_state`` is the machine's initial state (see the module's notes on creations).

    Give it a plain engine (:func:`~pystator.stores.sql.engine.create_engine_from_url`), not a
    worker's: a fleet engine starts every SQLite transaction with ``BEGIN IMMEDIATE`` (the read
    would hold the write lock while it streams) and sets PostgreSQL's statement timeout.
    """

    engine: Engine
    machine_name: str
    since: datetime | None = None
    until: datetime | None = None
    entity_ids: Sequence[str] | None = None
    initial_state: str | None = None

    @property
    def label(self) -> str:
        """``transition_history``."""
        return HISTORY_SOURCE

    def runs(self) -> Iterator[EntityRun]:
        """Each entity's transitions in version order, streamed."""
        with translate_errors("transition history"), self.engine.connect() as conn:
            rows = stream_history(
                conn,
                self.machine_name,
                since=self.since,
                until=self.until,
                entity_ids=None if self.entity_ids is None else list(self.entity_ids),
            )
            for entity, run in runs_of(rows):
                yield entity, run if self.initial_state is None else self._created(run)

    def _created(self, run: Iterable[ObservationRow]) -> Iterator[ObservationRow]:
        """``run`` with a creation by a trigger preceded by the initial state it left."""
        for row in run:
            at, seq, _state, trigger, previous = row
            if previous is None and trigger is not None and self.initial_state is not None:
                yield at, seq, self.initial_state, None, None
            yield row


__all__ = [
    "HISTORY_SOURCE",
    "OBSERVATIONS_SOURCE",
    "ObservationSource",
    "StoredObservations",
    "TransitionHistorySource",
]
