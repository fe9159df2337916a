"""The start-up drain (``pystator.fleet.startup.BacklogDrain``), counted: several workers, each
with several threads, walk a listed backlog over many entities (each from its own place in the
list, in small chunks and small pages, so they meet on each other's entities) and apply it
with 0 lost, 0 applied twice, and each entity's events in submission order. While a drain
walks its backlog, the relay of its process leaves that backlog alone (``test_relay.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from pystator.fleet.processor import Processor, ProcessorOptions
from pystator.fleet.producer import EventSpec
from pystator.fleet.relay import EVERYTHING
from pystator.fleet.startup import BacklogDrain, rotated
from pystator.stores.sql import event_queries
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.schema import transition_history, worker_events
from tests.support.worker import MACHINE, Rig, make_rig

pytestmark = pytest.mark.integration

ENTITIES = 400
EVENTS_PER_ENTITY = 5
WORKERS = 3
THREADS = 3
#: Small chunks and pages: many transactions, several listings, workers meeting often.
CHUNK = 8
PAGE = 150


@pytest.fixture
def rig(pg_migrated_url: str) -> Iterator[Rig]:
    rig = make_rig(pg_migrated_url)
    yield rig
    dispose(rig.engine)


def submit_backlog(rig: Rig, entities: int = ENTITIES) -> int:
    """``EVENTS_PER_ENTITY`` events per entity, interleaved across entities (as producers
    running side by side submit them); returns how many."""
    specs = [
        EventSpec(
            machine=MACHINE,
            entity_id=f"e{entity}",
            trigger="open" if round_ == 0 else "bump",
            context={"n": round_},
        )
        for round_ in range(EVENTS_PER_ENTITY)
        for entity in range(entities)
    ]
    rig.producer.submit_many(specs)
    return len(specs)


def test_several_workers_drain_a_backlog_once_each_and_in_order(rig: Rig) -> None:
    submitted = submit_backlog(rig)
    engines = [fleet_engine(rig.url, pool_size=THREADS + 1) for _ in range(WORKERS)]
    drains = [
        BacklogDrain(
            Processor(
                engine,
                rig.machines,
                options=ProcessorOptions(batch_entities=CHUNK),
                clock=rig.clock,
            ),
            threads=THREADS,
            order=f"worker-{n}",
            page=PAGE,
        )
        for n, engine in enumerate(engines)
    ]
    try:
        runs = [threading.Thread(target=drain.run) for drain in drains]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
    finally:
        for engine in engines:
            dispose(engine)

    with rig.engine.connect() as conn:
        statuses: dict[str, int] = dict(
            conn.execute(
                sa.select(worker_events.c.status, sa.func.count()).group_by(worker_events.c.status)
            ).all()
        )
        history = conn.execute(
            sa.select(
                transition_history.c.entity_id,
                transition_history.c.version,
                transition_history.c.event_id,
            ).order_by(transition_history.c.entity_id, transition_history.c.version)
        ).all()
    assert statuses == {"completed": submitted}  # 0 lost: every event applied
    assert sum(drain.handled for drain in drains) == submitted  # each handled once
    event_ids = [row.event_id for row in history]
    assert len(event_ids) == len(set(event_ids)) == submitted  # 0 applied twice
    by_entity: dict[str, list[int]] = {}
    for row in history:
        by_entity.setdefault(row.entity_id, []).append(row.event_id)
    assert len(by_entity) == ENTITIES
    out_of_order = {e: ids for e, ids in by_entity.items() if ids != sorted(ids)}
    assert out_of_order == {}  # per entity: in submission order
    assert all(len(ids) == EVENTS_PER_ENTITY for ids in by_entity.values())
    for entity in ("e0", f"e{ENTITIES - 1}"):
        record = rig.record(entity)
        assert record.state == "open" and record.version == EVENTS_PER_ENTITY
    # more than one worker did part of it: they walked the list from different places
    assert sum(1 for drain in drains if drain.handled > 0) > 1


def test_the_list_is_paged_oldest_head_first_up_to_the_backlog(rig: Rig) -> None:
    submit_backlog(rig, entities=10)
    with rig.engine.connect() as conn:
        through = event_queries.newest_event_id(conn)
        assert through is not None
        first = event_queries.backlog_entities(conn, rig.clock(), through=through, limit=4)
        rest = event_queries.backlog_entities(
            conn, rig.clock(), through=through, after=first[-1][1], limit=100
        )
        older = event_queries.backlog_entities(conn, rig.clock(), through=5, limit=100)
    assert [key for key, _ in first] == [(MACHINE, f"e{n}") for n in range(4)]
    assert [key for key, _ in rest] == [(MACHINE, f"e{n}") for n in range(4, 10)]
    assert [head for _, head in first + rest] == sorted(head for _, head in first + rest)
    assert len(older) == 5  # only entities whose oldest pending event is part of the backlog


def test_each_worker_starts_from_its_own_place_in_the_list() -> None:
    keys = [(MACHINE, f"e{n}") for n in range(1000)]
    starts = {rotated(keys, f"host:{pid}:abcd")[0] for pid in range(10)}
    assert len(starts) > 5
    assert sorted(rotated(keys, "host:1:abcd")) == sorted(keys)  # a rotation: every key once
    assert rotated(keys, "") == keys


def test_while_it_walks_its_backlog_the_relay_leaves_it_alone(rig: Rig) -> None:
    submit_backlog(rig, entities=10)
    drain = BacklogDrain(rig.processor, threads=1)
    assert drain.leaves_through() == EVERYTHING  # before it knows its backlog
    seen: list[int | None] = []
    rig.processor.after_commit.append(lambda _batch: seen.append(drain.leaves_through()))
    assert drain.run() == 10 * EVENTS_PER_ENTITY
    with rig.engine.connect() as conn:
        newest = event_queries.newest_event_id(conn)
    assert seen and set(seen) == {newest}  # while applying: the backlog up to its newest
    assert drain.leaves_through() is None  # ended: the relay takes over again
