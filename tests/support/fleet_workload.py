"""The fleet fault tests' workload: events planned at random (poison included), from a seed."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------------------- the workload


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedEvent:
    """One submission of the workload (duplicates share ``key`` with an earlier submission)."""

    entity_id: str
    trigger: str
    context: Mapping[str, Any]
    key: str
    max_attempts: int


TRIGGER_WEIGHTS = (("next", 70), ("reset", 15), ("poke", 15))
POISON_ENTITY_SHARE = 0.03  # entities that may receive poison pokes
POISON_SHARE = 0.5  # of the pokes such an entity receives
POISON_MAX_ATTEMPTS = 2


def plan_workload(
    *, events: int, entities: int, duplicate_share: float, seed: int
) -> list[PlannedEvent]:
    """A deterministic mix of events for ``fleet_cycle``, with duplicates re-using keys.

    ``next`` cycles A→B→C→A; ``reset`` (B or C → A) is rejected when ``allow`` is false and
    undefined in A; ``poke`` self-loops unless ``poison`` makes its guard raise, which the
    worker retries and then dead-letters.
    """
    rng = random.Random(seed)
    names, weights = zip(*TRIGGER_WEIGHTS, strict=True)
    entity_ids = [f"e{n:05d}" for n in range(entities)]
    poison = set(rng.sample(entity_ids, max(2, int(entities * POISON_ENTITY_SHARE))))
    out: list[PlannedEvent] = []
    originals: list[PlannedEvent] = []
    for n in range(events):
        if originals and rng.random() < duplicate_share:
            out.append(rng.choice(originals[-200:]))
            continue
        fresh = len(originals)
        entity = entity_ids[fresh] if fresh < entities else rng.choice(entity_ids)
        trigger = rng.choices(names, weights)[0]
        is_poison = trigger == "poke" and entity in poison and rng.random() < POISON_SHARE
        planned = PlannedEvent(
            entity_id=entity,
            trigger=trigger,
            context={"n": n, "allow": rng.random() < 0.7, "poison": is_poison},
            key=f"k{n}",
            max_attempts=POISON_MAX_ATTEMPTS if is_poison else 5,
        )
        originals.append(planned)
        out.append(planned)
    return out
