"""Shadow mode in a worker: a candidate's decision computed beside the active one, never acted on.

:class:`ShadowBook` keeps the active shadows (``machine_shadows``) compiled, refreshed every few
seconds. For a sampled event the processor calls :meth:`ShadowBook.compare` right after the
active step, with the same entity record, event and time; the shadow's step is pure and its
outcome is only compared: its actions never run, its timers are never armed, and whatever it
raises is recorded as a difference of kind ``error``. The comparisons travel in the batch
(:attr:`Batch.shadow <pystator.fleet.batch.Batch.shadow>`, counted by the Prometheus observer)
and are added up in memory, then written by a background flush about once a second in a small
transaction of their own, so the event's commit path gains no statement and no lock.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from pystator.config.logs import get_logger
from pystator.fsm_core.divergence import ERROR, divergence
from pystator.fsm_core.errors import FSMError, StoreError
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.records import EntityRecord, EventInput, Outcome
from pystator.fsm_core.step import StepOutcome, apply_event
from pystator.registry.stored import Binder
from pystator.stores.sql import shadow_queries
from pystator.stores.sql.connections import transaction
from pystator.stores.sql.db_clock import read_now
from pystator.stores.sql.engine import translate_errors
from pystator.stores.sql.shadow_queries import Tally

log = get_logger("pystator.shadow")

#: Seconds between reloads of the active shadows.
REFRESH_SECONDS = 2.0
#: Seconds between flushes of the tallies.
FLUSH_SECONDS = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ShadowResult:
    """One comparison: ``kind`` None when the shadow agreed."""

    shadow_id: int
    machine: str
    entity_id: str
    event_id: int | None
    state: str
    trigger: str
    active_target: str | None
    shadow_target: str | None
    kind: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Shadow:
    id: int
    rate: float
    machine: StateMachine


class ShadowBook:
    """The active shadows of every machine, and the tallies waiting to be written."""

    def __init__(
        self,
        engine: Engine,
        *,
        bind: Binder | None = None,
        refresh_seconds: float = REFRESH_SECONDS,
        flush_seconds: float = FLUSH_SECONDS,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.engine = engine
        self.bind = bind
        self.refresh_seconds = refresh_seconds
        self.flush_seconds = flush_seconds
        self.rand = rand
        self._shadows: dict[str, _Shadow] = {}
        self._compiled: dict[tuple[int, str], StateMachine] = {}
        self._loaded_at: float | None = None
        self._tallies: dict[int, Tally] = {}
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._closed = threading.Event()

    # --- the active shadows ------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> None:
        """Reload the active shadows when the interval has passed (outside any transaction)."""
        now = time.monotonic()
        loaded = self._loaded_at
        if not force and loaded is not None and now - loaded < self.refresh_seconds:
            return
        self._loaded_at = now
        try:
            with translate_errors("shadows"), self.engine.connect() as conn:
                rows = shadow_queries.active_shadows(conn)
        except StoreError as exc:
            log.warning("shadow_refresh_failed", error=str(exc))
            return
        shadows: dict[str, _Shadow] = {}
        for row in rows:
            machine = self._compile(row.id, row.checksum, row)
            if machine is not None:
                shadows[row.machine] = _Shadow(row.id, row.sample_rate, machine)
        self._shadows = shadows

    def _compile(
        self, shadow_id: int, checksum: str, row: shadow_queries.ShadowRow
    ) -> StateMachine | None:
        key = (shadow_id, checksum)
        machine = self._compiled.get(key)
        if machine is None:
            try:
                machine = StateMachine.from_dict(row.definition, source=f"shadow:{shadow_id}")
                if self.bind is not None:
                    self.bind(machine)
            except FSMError as exc:
                log.warning("shadow_not_compiled", shadow=shadow_id, error=str(exc))
                return None
            self._compiled[key] = machine
        return machine

    def active(self, machine: str) -> bool:
        """True when ``machine`` has a shadow here."""
        return machine in self._shadows

    # --- comparing ---------------------------------------------------------------------------

    def compare(
        self,
        machine: str,
        record: EntityRecord | None,
        event: EventInput,
        now: datetime,
        active: StepOutcome,
        *,
        entity_id: str,
    ) -> ShadowResult | None:
        """The shadow's decision on the same input as ``active``, compared (None: no shadow,
        not sampled, or nothing to compare). Never raises; never changes anything."""
        shadow = self._shadows.get(machine)
        if shadow is None or active.status not in (Outcome.APPLIED, Outcome.REJECTED):
            return None
        if shadow.rate < 1.0 and self.rand() >= shadow.rate:
            return None
        applied = active.status == Outcome.APPLIED and active.record is not None
        target = active.record.state if applied and active.record is not None else None
        actions = active.result.all_actions if applied else ()
        state = active.result.source_state or (record.state if record else "")
        error = None
        shadow_target = None
        try:
            outcome = apply_event(shadow.machine, record, event, now, entity_id=entity_id)
            kind = divergence(target, actions, outcome.result)
            if outcome.status == Outcome.APPLIED and outcome.record is not None:
                shadow_target = outcome.record.state
        except Exception as exc:  # a raising shadow is a difference, never the event's failure
            kind, error = ERROR, f"{type(exc).__name__}: {exc}"
        result = ShadowResult(
            shadow_id=shadow.id,
            machine=machine,
            entity_id=entity_id,
            event_id=event.event_id,
            state=state,
            trigger=event.trigger,
            active_target=target,
            shadow_target=shadow_target,
            kind=kind,
            error=error,
        )
        return result

    # --- tallies -----------------------------------------------------------------------------

    def add(self, results: list[ShadowResult]) -> None:
        """Count committed comparisons (after the batch's commit); flushed in the background."""
        if not results:
            return
        with self._lock:
            for r in results:
                tally = self._tallies.setdefault(r.shadow_id, Tally())
                if r.kind is None:
                    tally.matched += 1
                    continue
                tally.mismatched += 1
                groups = tally.groups if tally.groups is not None else {}
                tally.groups = groups
                key = (r.state, r.trigger, r.active_target or "", r.shadow_target or "", r.kind)
                count, examples = groups.get(key, (0, []))
                if len(examples) < shadow_queries.MAX_EXAMPLES:
                    example = {"entity_id": r.entity_id, "event_id": r.event_id}
                    if r.error:
                        example["error"] = r.error[:500]
                    examples.append(example)
                groups[key] = (count + 1, examples)
        self._start_flusher()

    def flush(self) -> None:
        """Write the tallies now (a failed write keeps them for the next flush)."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        if not tallies:
            return
        for attempt in range(2):  # a group two workers created at once: the second try adds
            try:
                with translate_errors("shadow tallies"), transaction(self.engine) as conn:
                    shadow_queries.add_tallies(conn, tallies, read_now(conn))
                return
            except StoreError as exc:
                if attempt:
                    log.warning("shadow_flush_failed", error=str(exc))
        with self._lock:
            for shadow_id, tally in tallies.items():
                kept = self._tallies.setdefault(shadow_id, Tally())
                kept.matched += tally.matched
                kept.mismatched += tally.mismatched
                if tally.groups:
                    groups = kept.groups if kept.groups is not None else {}
                    for key, (count, examples) in tally.groups.items():
                        old, old_examples = groups.get(key, (0, []))
                        groups[key] = (old + count, old_examples or examples)
                    kept.groups = groups

    def _start_flusher(self) -> None:
        if self._flusher is not None or self._closed.is_set():
            return
        with self._lock:
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(
                target=self._flush_loop, name="pystator-shadow-flush", daemon=True
            )
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._closed.wait(self.flush_seconds):
            self.flush()

    def close(self) -> None:
        """Stop the background flush after a last one."""
        self._closed.set()
        flusher = self._flusher
        if flusher is not None:
            flusher.join(timeout=self.flush_seconds * 5)
        self.flush()


__all__ = ["FLUSH_SECONDS", "REFRESH_SECONDS", "ShadowBook", "ShadowResult"]
