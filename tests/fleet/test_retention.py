"""Retention on PostgreSQL and SQLite: rows past their window go, the rest stay.

Rows are written with chosen ages (or produced by a real producer and processor on a fake clock)
and a pass runs at a chosen ``now``: nothing here sleeps. Pending events, dead letters and
unhandled dead actions must survive any pass; a dry run must count exactly what a real pass then
removes, and delete nothing.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pystator.cli import main
from pystator.config.settings import Settings, load_settings
from pystator.fleet.duties import Duties
from pystator.fleet.retention import PRUNE_LOCK, Pruner, RetentionPolicy, prune
from pystator.fleet.webhooks import LOOKBACK_SECONDS
from pystator.stores.sql import locking
from pystator.stores.sql.connections import dispose, fleet_engine
from pystator.stores.sql.retention_queries import WEBHOOK_MIN_AGE
from pystator.stores.sql.schema import (
    action_outbox,
    audit_log,
    entity_states,
    event_rollups,
    idempotency_conflicts,
    transition_history,
    webhook_deliveries,
    worker_events,
    worker_heartbeats,
)
from tests.fleet.test_fleet_faults import Submissions, drained, run_producers
from tests.support.fleet_database import create_action_log, create_schema, status_counts
from tests.support.fleet_invariants import check_invariants
from tests.support.fleet_processes import RedisServer, WorkerFleet, producer_runtime
from tests.support.fleet_workload import plan_workload
from tests.support.waiting import wait_until
from tests.support.worker import MACHINE, Hooks, make_rig, make_runtime

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DEFAULTS = RetentionPolicy.from_settings(Settings())


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = fleet_engine(db_url, pool_size=4)
    yield engine
    dispose(engine)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def add_event(conn: sa.Connection, entity: str, status: str, days: float, **extra: Any) -> int:
    at = ago(days)
    values: dict[str, Any] = {
        "machine": MACHINE,
        "entity_id": entity,
        "trigger": "open",
        "context": {},
        "status": status,
        "errors": [],
        "fires_at": at,
        "created_at": at,
        "updated_at": at,
        "completed_at": None if status in ("pending", "dead") else at,
        **extra,
    }
    return int(
        conn.execute(
            sa.insert(worker_events).values(values).returning(worker_events.c.id)
        ).scalar_one()
    )


def add_history(conn: sa.Connection, entity: str, version: int, days: float) -> int:
    values = {
        "machine": MACHINE,
        "entity_id": entity,
        "version": version,
        "target_state": "open",
        "actions": [],
        "created_at": ago(days),
    }
    return int(
        conn.execute(
            sa.insert(transition_history).values(values).returning(transition_history.c.id)
        ).scalar_one()
    )


def add_action(conn: sa.Connection, status: str, days: float) -> int:
    at = ago(days)
    values = {
        "machine": MACHINE,
        "entity_id": "x",
        "entity_version": 1,
        "action": "record",
        "phase": "transition",
        "params": {},
        "context": {},
        "status": status,
        "errors": [],
        "available_at": at,
        "created_at": at,
        "completed_at": at if status in ("done", "discarded") else None,
    }
    return int(
        conn.execute(
            sa.insert(action_outbox).values(values).returning(action_outbox.c.id)
        ).scalar_one()
    )


def add_audit(conn: sa.Connection, days: float) -> int:
    values = {
        "at": ago(days),
        "principal": "ops",
        "role": "admin",
        "method": "POST",
        "route": "/api/v1/events",
        "status": 202,
    }
    return int(
        conn.execute(sa.insert(audit_log).values(values).returning(audit_log.c.id)).scalar_one()
    )


def add_conflict(conn: sa.Connection, days: float) -> int:
    values = {
        "machine": MACHINE,
        "idempotency_key": f"k{days}",
        "event_id": 1,
        "entity_id": "x",
        "trigger": "open",
        "fingerprint": "f" * 64,
        "created_at": ago(days),
    }
    return int(
        conn.execute(
            sa.insert(idempotency_conflicts).values(values).returning(idempotency_conflicts.c.id)
        ).scalar_one()
    )


def add_rollup(conn: sa.Connection, days: float) -> None:
    minute = ago(days).replace(second=0, microsecond=0)
    values = {"minute": minute, "machine": MACHINE, "outcome": "applied", "count": 3}
    conn.execute(sa.insert(event_rollups).values(values))


def add_heartbeat(conn: sa.Connection, worker_id: str, days: float) -> None:
    values = {
        "worker_id": worker_id,
        "host": "h",
        "pid": 1,
        "kind": "celery",
        "started_at": ago(days + 1),
        "beat_at": ago(days),
        "progress_at": ago(days),
        "info": {},
    }
    conn.execute(sa.insert(worker_heartbeats).values(values))


def add_delivery(
    conn: sa.Connection,
    status: str,
    days: float,
    *,
    outbox: str | None = None,
    kind: str = "test",
    payload: dict[str, Any] | None = None,
) -> tuple[int, int | None]:
    """A ``webhook_deliveries`` row created ``days`` ago (and delivered then, when
    ``delivered``), with an outbox row of status ``outbox`` ("gone": an id no row has); its id
    and its outbox row's id."""
    outbox_id: int | None = None
    if outbox == "gone":
        outbox_id = 10**9
    elif outbox is not None:
        outbox_id = add_action(conn, outbox, days)
    at = ago(days)
    values = {
        "webhook_id": 1,
        "kind": kind,
        "source_key": f"{kind}-{status}-{days}-{outbox}",
        "payload": payload or {},
        "outbox_id": outbox_id,
        "status": status,
        "attempts": 1,
        "created_at": at,
        "delivered_at": at if status == "delivered" else None,
    }
    delivery = conn.execute(
        sa.insert(webhook_deliveries).values(values).returning(webhook_deliveries.c.id)
    ).scalar_one()
    return int(delivery), outbox_id if outbox != "gone" else None


def add_entity(conn: sa.Connection, entity: str, version: int) -> None:
    values = {
        "machine": MACHINE,
        "entity_id": entity,
        "state": "waiting",
        "context": {},
        "entries": {},
        "version": version,
        "created_at": NOW,
        "updated_at": NOW,
    }
    conn.execute(sa.insert(entity_states).values(values))


def dwell(entity: str, version: int) -> dict[str, Any]:
    return {"machine": MACHINE, "entity_id": entity, "state": "waiting", "version": version}


def heartbeat_ids(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(worker_heartbeats.c.worker_id)).scalars())


def ids(engine: sa.Engine, table: sa.Table) -> set[int]:
    with engine.connect() as conn:
        return {int(i) for i in conn.execute(sa.select(table.c.id)).scalars()}


def rollup_days(engine: sa.Engine) -> set[int]:
    with engine.connect() as conn:
        minutes = conn.execute(sa.select(event_rollups.c.minute)).scalars().all()
    return {round((NOW - m.replace(tzinfo=UTC)).total_seconds() / 86400) for m in minutes}


class Seeded:
    """One row of each kind on either side of its default window, remembering which must stay."""

    def __init__(self, engine: sa.Engine) -> None:
        with engine.begin() as conn:
            self.stay_events = {
                add_event(conn, "a", "pending", 60),  # pending: never touched, however old
                add_event(conn, "a", "dead", 60),  # a dead letter until an operator handles it
                add_event(conn, "b", "completed", 3),
                add_event(conn, "b", "stale", 6),
                add_event(conn, "c", "rejected", 20),
                add_event(conn, "c", "discarded", 29),
            }
            self.gone_events = {
                add_event(conn, "a", "completed", 60),  # the pending event's entity's past
                add_event(conn, "b", "completed", 8),
                add_event(conn, "b", "stale", 8),
                add_event(conn, "c", "rejected", 31),
                add_event(conn, "c", "cancelled", 31),
                add_event(conn, "c", "discarded", 45),
            }
            self.stay_history = {add_history(conn, "a", 2, 10), add_history(conn, "b", 1, 89)}
            self.gone_history = {add_history(conn, "a", 1, 91)}
            self.stay_actions = {
                add_action(conn, "pending", 60),
                add_action(conn, "dead", 60),
                add_action(conn, "done", 6),
            }
            self.gone_actions = {add_action(conn, "done", 8), add_action(conn, "discarded", 8)}
            self.stay_audit = {add_audit(conn, 300)}
            self.gone_audit = {add_audit(conn, 366)}
            self.stay_conflicts = {add_conflict(conn, 10)}
            self.gone_conflicts = {add_conflict(conn, 31)}
            add_rollup(conn, 399)
            add_rollup(conn, 401)
            add_heartbeat(conn, "beating", 0.001)
            add_heartbeat(conn, "quiet-for-6-days", 6)
            add_heartbeat(conn, "gone-8-days", 8)
            # the webhook delivery log (30 days): only finished deliveries go
            add_entity(conn, "stuck", 4)
            stay = [
                add_delivery(conn, "delivered", 20, outbox="done"),
                add_delivery(conn, "dropped", 10, outbox="discarded"),
                add_delivery(conn, "pending", 60, outbox="pending"),  # being sent
                add_delivery(conn, "failing", 60, outbox="pending"),  # being retried
                add_delivery(conn, "failing", 61, outbox="dead"),  # an operator may resend it
                # a dwell notice about an entity still in that version: its key stays
                add_delivery(
                    conn, "delivered", 62, kind="dwell.breached", payload=dwell("stuck", 4)
                ),
            ]
            gone = [
                add_delivery(conn, "delivered", 31, outbox="done"),
                add_delivery(conn, "dropped", 31, outbox="discarded"),
                add_delivery(conn, "failing", 32, outbox="discarded"),  # given up
                add_delivery(conn, "failing", 33, outbox="gone"),  # given up, outbox pruned
                # the entity has moved on since (version 4): the notice is history
                add_delivery(
                    conn, "delivered", 63, kind="dwell.breached", payload=dwell("stuck", 3)
                ),
            ]
            self.stay_deliveries = {d for d, _ in stay}
            self.gone_deliveries = {d for d, _ in gone}
            # the outbox rows of those deliveries follow the actions' window (7 days)
            for _, outbox_id in stay + gone:
                if outbox_id is None:
                    continue
                status = sa.select(action_outbox.c.status).where(action_outbox.c.id == outbox_id)
                if conn.execute(status).scalar_one() in ("pending", "dead"):
                    self.stay_actions.add(outbox_id)
                else:
                    self.gone_actions.add(outbox_id)


EXPECTED_REMOVED = {
    "worker_events.completed": 2,
    "worker_events.stale": 1,
    "worker_events.rejected": 1,
    "worker_events.cancelled": 1,
    "worker_events.discarded": 1,
    "idempotency_conflicts": 1,
    "transition_history": 1,
    "action_outbox.done": 3,  # two of them deliveries'
    "action_outbox.discarded": 4,  # three of them deliveries'
    "audit_log": 1,
    "event_rollups": 1,
    "shadow_diffs": 0,  # no shadow seeded here (tests/replay covers shadows)
    "machine_shadows": 0,
    "worker_heartbeats": 1,
    "webhook_deliveries.delivered": 2,
    "webhook_deliveries.dropped": 1,
    "webhook_deliveries.abandoned": 2,
}


def test_rows_past_their_window_go_and_the_rest_stay(engine: sa.Engine) -> None:
    seeded = Seeded(engine)
    report = prune(engine, DEFAULTS, now=NOW)
    assert not report.skipped and report.finished
    assert report.removed == EXPECTED_REMOVED
    assert ids(engine, worker_events) == seeded.stay_events
    assert ids(engine, transition_history) == seeded.stay_history
    assert ids(engine, action_outbox) == seeded.stay_actions
    assert ids(engine, audit_log) == seeded.stay_audit
    assert ids(engine, idempotency_conflicts) == seeded.stay_conflicts
    assert rollup_days(engine) == {399}
    assert heartbeat_ids(engine) == {"beating", "quiet-for-6-days"}
    assert ids(engine, webhook_deliveries) == seeded.stay_deliveries
    # a second pass finds nothing more
    assert prune(engine, DEFAULTS, now=NOW).total == 0


def test_a_webhook_delivery_outlives_the_webhook_scans_look_back(engine: sa.Engine) -> None:
    # the relay's scan looks an hour back when it starts: a delivery younger than that must keep
    # its unique key, or the same notice would be queued again
    assert timedelta(seconds=LOOKBACK_SECONDS) < WEBHOOK_MIN_AGE
    with engine.begin() as conn:
        young, _ = add_delivery(conn, "delivered", 1 / 24)
        old, _ = add_delivery(conn, "delivered", 3 / 24)
    minutes = replace(DEFAULTS, windows={**DEFAULTS.windows, "webhooks": 1 / 1440})
    report = prune(engine, minutes, now=NOW)
    assert report.removed["webhook_deliveries.delivered"] == 1
    assert ids(engine, webhook_deliveries) == {young}
    assert old not in ids(engine, webhook_deliveries)


def test_a_dry_run_counts_what_a_pass_removes_and_deletes_nothing(engine: sa.Engine) -> None:
    seeded = Seeded(engine)
    everything = seeded.stay_events | seeded.gone_events
    dry = prune(engine, DEFAULTS, now=NOW, dry_run=True)
    assert dry.dry_run and dry.removed == EXPECTED_REMOVED
    assert ids(engine, worker_events) == everything
    assert rollup_days(engine) == {399, 401}
    assert prune(engine, DEFAULTS, now=NOW).removed == EXPECTED_REMOVED


def test_small_batches_remove_everything_due_and_a_zero_window_keeps_forever(
    engine: sa.Engine,
) -> None:
    with engine.begin() as conn:
        old = {add_event(conn, f"e{n}", "completed", 8 + n / 10) for n in range(23)}
        old |= {add_event(conn, f"t{n}", "completed", 9) for n in range(10)}  # one timestamp
        kept = {add_history(conn, f"e{n}", 1, 1000) for n in range(5)}
    policy = replace(DEFAULTS, batch_rows=4, windows={**DEFAULTS.windows, "history": 0.0})
    report = prune(engine, policy, now=NOW)
    assert report.removed["worker_events.completed"] == len(old) == 33
    assert ids(engine, worker_events) == set()
    assert "transition_history" in report.kept_forever
    assert "transition_history" not in report.removed
    assert ids(engine, transition_history) == kept


def test_a_time_budget_ends_a_pass_early_and_the_next_pass_continues(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for n in range(10):
            add_event(conn, f"e{n}", "completed", 30)
    policy = replace(DEFAULTS, batch_rows=2, pause_seconds=0.0)
    first = prune(engine, policy, now=NOW, max_seconds=0.0)
    assert not first.finished and first.total == 0
    second = prune(engine, policy, now=NOW)
    assert second.finished and second.removed["worker_events.completed"] == 10


def test_archiving_writes_every_pruned_row_before_deleting_it(
    engine: sa.Engine, tmp_path: Path
) -> None:
    seeded = Seeded(engine)
    archive = tmp_path / "archive"
    report = prune(engine, replace(DEFAULTS, archive_dir=archive), now=NOW)
    assert report.removed == EXPECTED_REMOVED
    events = [
        json.loads(line)
        for line in (archive / "worker_events-2026-11-27.jsonl").read_text().splitlines()
    ]
    assert {e["id"] for e in events} == seeded.gone_events
    assert {e["status"] for e in events} == {
        "completed",
        "stale",
        "rejected",
        "cancelled",
        "discarded",
    }
    history = (archive / "transition_history-2026-11-27.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in history] == sorted(seeded.gone_history)
    assert len((archive / "event_rollups-2026-11-27.jsonl").read_text().splitlines()) == 1
    assert ids(engine, worker_events) == seeded.stay_events


def test_an_entitys_pending_events_are_applied_after_its_past_is_pruned(db_url: str) -> None:
    rig = make_rig(db_url)
    try:
        opened = rig.submit("a", "open")
        bumped = rig.submit("a", "bump")
        refused = rig.submit("b", "close")  # no such transition from "new": rejected
        rig.processor.drain()
        assert rig.event(opened).status == "completed"
        assert rig.event(refused).status == "rejected"
        assert rig.count(action_outbox, status="done") == 2
        rig.clock.advance(10 * 86400)
        waiting = rig.submit("a", "close")  # pending while the pass runs
        report = prune(rig.engine, DEFAULTS, now=rig.clock())
        assert report.removed["worker_events.completed"] == 2
        assert report.removed["action_outbox.done"] == 2
        remaining = {e.id: e.status for e in rig.events()}
        assert remaining == {refused: "rejected", waiting: "pending"}
        assert [h.version for h in rig.history("a")] == [1, 2]  # history is kept 90 days
        rig.processor.drain()
        assert rig.event(waiting).status == "completed"
        record = rig.record("a")
        assert record.state == "closed" and record.version == 3
        assert [h.version for h in rig.history("a")] == [1, 2, 3]
        assert bumped not in {e.id for e in rig.events()}
    finally:
        dispose(rig.engine)


def test_one_process_prunes_at_a_time(pg_migrated_url: str) -> None:
    engine = fleet_engine(pg_migrated_url, pool_size=4)
    try:
        with engine.begin() as conn:
            add_event(conn, "a", "completed", 30)
        holder = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            assert locking.try_duty_lock(holder, PRUNE_LOCK)
            report = prune(engine, DEFAULTS, now=NOW)
            assert report.skipped and report.total == 0
            assert len(ids(engine, worker_events)) == 1
            assert main(["prune", "--url", pg_migrated_url]) == 3
        finally:
            locking.release_duty_lock(holder, PRUNE_LOCK)
            holder.close()
        assert prune(engine, DEFAULTS, now=NOW).removed["worker_events.completed"] == 1
    finally:
        dispose(engine)


def test_the_prune_command_reports_per_table(
    db_url: str, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with engine.begin() as conn:
        kept = add_event(conn, "a", "pending", 400)
        add_event(conn, "a", "completed", 400)
        add_event(conn, "a", "rejected", 400)
        add_history(conn, "a", 1, 400)
    assert main(["prune", "--dry-run", "--url", db_url]) == 0
    out = capsys.readouterr().out
    assert "would remove" in out
    assert _line(out, "worker_events.completed") == ["worker_events.completed", "1"]
    assert _line(out, "total") == ["total", "3"]
    assert len(ids(engine, worker_events)) == 3
    assert main(["prune", "--json", "--url", db_url]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == 3 and report["removed"]["transition_history"] == 1
    assert ids(engine, worker_events) == {kept}


def _line(out: str, first: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.startswith(first + " "))


def test_the_worker_duty_prunes_with_the_settings(db_url: str, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_event(conn, "a", "completed", 2)
        recent = add_event(conn, "a", "completed", 0.5)
    settings = replace(load_settings({}), database_url=db_url, retention_completed_days=1.0)
    pruner = Pruner(settings, clock=lambda: NOW)
    try:
        report = pruner.run_pass()
    finally:
        dispose(pruner.engine)
    assert report is not None and report.removed["worker_events.completed"] == 1
    assert ids(engine, worker_events) == {recent}


# --- a prune beside a draining fleet changes no outcome ----------------------------------------

OLD_MACHINE = "archived_cycle"  # rows of a machine long gone quiet, all past their windows
OLD_EVENTS = 30_000
OLD_HISTORY = 30_000
OLD_ACTIONS = 5_000
FLEET_EVENTS = 2_000
FLEET_ENTITIES = 250
FLEET_SUBMIT_SECONDS = 10.0
FLEET_DRAIN_TIMEOUT_SECONDS = 180.0
KILL_INTERVAL_SECONDS = (2.0, 4.0)
PRUNER_ENV = {
    "PYSTATOR_PRUNE_INTERVAL_SECONDS": "0.5",
    "PYSTATOR_PRUNE_BATCH_ROWS": "200",
    "PYSTATOR_PRUNE_PAUSE_SECONDS": "0.05",
    "PYSTATOR_PRUNE_MAX_SECONDS": "3",  # short passes: the lock changes hands between workers
}
SEED_OLD_ROWS = f"""
INSERT INTO worker_events (machine, entity_id, trigger, context, status, errors, fires_at,
                           created_at, updated_at, completed_at, idempotency_key)
SELECT '{OLD_MACHINE}', 'old' || mod(g, 500), 'next', '{{}}'::jsonb, 'completed', '[]'::jsonb,
       t, t, t, t, 'old-' || g
FROM generate_series(1, {OLD_EVENTS}) AS g,
     LATERAL (SELECT now() - interval '30 days' - g * interval '1 second' AS t) AS x;
INSERT INTO transition_history (machine, entity_id, version, target_state, actions, created_at)
SELECT '{OLD_MACHINE}', 'old' || g, 1, 'A', '[]'::jsonb,
       now() - interval '100 days' - g * interval '1 second'
FROM generate_series(1, {OLD_HISTORY}) AS g;
INSERT INTO action_outbox (machine, entity_id, entity_version, action, phase, params, context,
                           status, errors, available_at, created_at, completed_at)
SELECT '{OLD_MACHINE}', 'old' || g, 1, 'log_action', 'transition', '{{}}'::jsonb, '{{}}'::jsonb,
       'done', '[]'::jsonb, t, t, t
FROM generate_series(1, {OLD_ACTIONS}) AS g,
     LATERAL (SELECT now() - interval '30 days' - g * interval '1 second' AS t) AS x;
"""


def old_rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return sum(
            int(
                conn.execute(
                    sa.select(sa.func.count()).where(table.c.machine == OLD_MACHINE)
                ).scalar_one()
            )
            for table in (worker_events, transition_history, action_outbox)
        )


@pytest.mark.slow
def test_pruning_beside_a_draining_fleet_changes_no_outcome(pg_url: str, tmp_path: Path) -> None:
    """Three workers drain a mixed workload (duplicates, rejections, poison events, actions)
    while their pruner duties delete 65,000 old rows of another machine in small batches, and a
    worker is SIGKILLed every few seconds (the one pruning too, at times: its lock goes with its
    connection); the fleet invariants of the fault tests hold and every old row is gone."""
    create_schema(pg_url)
    engine = sa.create_engine(pg_url)
    try:
        create_action_log(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql(SEED_OLD_ROWS)
        assert old_rows(engine) == OLD_EVENTS + OLD_HISTORY + OLD_ACTIONS
        plan = plan_workload(
            events=FLEET_EVENTS, entities=FLEET_ENTITIES, duplicate_share=0.05, seed=17
        )
        subs = Submissions()
        with (
            RedisServer(log_path=tmp_path / "redis.log") as broker,
            producer_runtime(pg_url, broker.url),
            WorkerFleet(
                database_url=pg_url,
                broker_url=broker.url,
                log_dir=tmp_path,
                concurrency=4,
                extra_env=PRUNER_ENV,
            ) as fleet,
        ):
            fleet.start_all(3)
            rng = random.Random(17)
            threads = run_producers(pg_url, plan, subs, FLEET_SUBMIT_SECONDS)
            while any(t.is_alive() for t in threads):
                time.sleep(rng.uniform(*KILL_INTERVAL_SECONDS))  # the fault schedule
                fleet.kill_and_restart(rng)  # maybe the pruning one, holding the lock
            for thread in threads:
                thread.join()
            pruning_while_draining = old_rows(engine) > 0
            fleet.kill_and_restart(rng)  # one more while the pruners work
            try:
                wait_until(lambda: drained(engine), timeout=FLEET_DRAIN_TIMEOUT_SECONDS)
                wait_until(lambda: old_rows(engine) == 0, timeout=FLEET_DRAIN_TIMEOUT_SECONDS)
            except TimeoutError as exc:
                raise AssertionError(
                    f"{exc}; {status_counts(engine)}, {old_rows(engine)} old rows left\n"
                    f"{fleet.log_tail()}"
                ) from exc
            assert fleet.exited() == {}, f"workers died on their own\n{fleet.log_tail()}"
            fleet.stop_all()
        report = check_invariants(
            engine, subs.accepted, subs.duplicates, duplicate_slack=subs.retried
        )
        assert not report.problems, f"{report}\nsubmit errors: {subs.errors[:5]}"
        assert subs.errors == []  # only workers die here; producers never see it
        assert fleet.kills >= 3
        assert {"completed", "rejected", "dead"} <= set(report.stats["statuses"])
        # the old rows were still being pruned when the last event was submitted
        assert pruning_while_draining
        pruners = {
            path.name
            for path in tmp_path.glob("worker-*.log")
            if '"event": "pruned"' in path.read_text(errors="replace")
        }
        assert pruners, fleet.log_tail()
    finally:
        engine.dispose()


def test_a_workers_duties_include_the_pruner(db_url: str, engine: sa.Engine) -> None:
    """The pruner runs as a duty of an in-process worker (on SQLite on the worker's own engine,
    so its batches queue with the work's writers)."""
    with engine.begin() as conn:
        kept = add_event(conn, "a", "pending", 30)
        add_event(conn, "a", "completed", 30)
    runtime = make_runtime(db_url, Hooks(), prune_interval_seconds=0.1)
    duties = Duties(runtime, relay=False, fatal=False)
    try:
        duties.start()
        wait_until(lambda: ids(engine, worker_events) == {kept}, timeout=30)
        assert any(t.name == "pystator-pruner" for t in duties.threads)
    finally:
        assert duties.shutdown(timeout=10)
        runtime.close()
