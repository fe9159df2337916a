"""Dashboard benchmark: how long each page takes to render with 1,000,000 rows in
``worker_events`` (target: 300 ms each).

    .venv/bin/python bench/dashboard.py [--rows 1000000] [--requests 20]

Runs on the local PostgreSQL (a database it creates and drops). Seeds the events the way
``bench/api.py`` does (five machines, 100,000 entities, a week of ``created_at``, 2 % dead with
errors, 1 % pending), plus what the other pages read: 100,000 entity states with 300,000 history
rows, 50,000 outbox rows, a day of per-minute rollups, 1 % of keyed events repeated, 1,000
idempotency conflicts, 10,000 audit rows and a few worker heartbeats. Then starts ``pystator
api`` on a free loopback port, logs in through ``/ui/login`` with an admin key (auth on), and
times each page from this process (server time plus a loopback hop). Numbers are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import httpx
import report  # bench/report.py: every run is saved as JSON
import sqlalchemy as sa

# bench/api.py's seeding and server helpers (this directory is on sys.path when run as a script)
from api import MACHINES, SEED_SQL, api_server, bench_database, machine  # type: ignore[import-not-found]

from pystator.registry import versions
from pystator.services import api_keys
from pystator.services.audit import Actor
from pystator.stores.sql.connections import dispose, fleet_engine

TARGET_MS = 300.0

EXTRA_SQL = (
    # entity states and their history
    """
    INSERT INTO entity_states (machine, entity_id, state, context, entries, version,
                               created_at, updated_at)
    SELECT 'bench_api_' || (g % 5), 'e' || g,
           (ARRAY['created','shipped','done'])[1 + g % 3],
           jsonb_build_object('n', g, 'customer', 'c' || (g % 977)), '{}'::jsonb, 3,
           now() - interval '7 days', now() - (g % 600) * interval '1 second'
    FROM generate_series(0, 99999) AS g
    """,
    """
    INSERT INTO transition_history (machine, entity_id, version, source_state, target_state,
                                    trigger, event_id, origin, actions, payload, created_at)
    SELECT 'bench_api_' || (g % 5), 'e' || (g % 100000), 1 + g / 100000,
           CASE WHEN g < 100000 THEN NULL ELSE 'created' END, 'shipped', 'ship', g, 'event',
           '[]'::jsonb, NULL, now() - interval '1 day' + g * interval '100 ms'
    FROM generate_series(0, 299999) AS g
    """,
    # the outbox: mostly done, some pending and dead
    """
    INSERT INTO action_outbox (event_id, machine, entity_id, entity_version, action, phase,
                               params, context, status, attempts, errors, available_at,
                               created_at, completed_at)
    SELECT g, 'bench_api_' || (g % 5), 'e' || (g % 100000), 1, 'notify', 'after', '{}'::jsonb,
           '{}'::jsonb,
           CASE WHEN g % 50 = 0 THEN 'dead' WHEN g % 50 = 1 THEN 'pending' ELSE 'done' END,
           CASE WHEN g % 50 = 0 THEN 20 ELSE 1 END,
           CASE WHEN g % 50 = 0 THEN '[{"attempt": 20, "message": "smtp 421"}]'::jsonb
                ELSE '[]'::jsonb END,
           now(), now() - g * interval '1 second', now()
    FROM generate_series(1, 50000) AS g
    """,
    # a day of per-minute counts for every machine and outcome
    """
    INSERT INTO event_rollups (minute, machine, outcome, count)
    SELECT date_trunc('minute', now()) - m * interval '1 minute', 'bench_api_' || k, o,
           (m * 7 + k * 13) % 500
    FROM generate_series(0, 1439) AS m, generate_series(0, 4) AS k,
         unnest(ARRAY['applied','rejected','stale','retried','dead']) AS o
    """,
    # repeated keys and refused reuses
    """
    UPDATE worker_events SET duplicate_count = 2,
                             last_duplicate_at = created_at + interval '1 minute'
    WHERE idempotency_key IS NOT NULL AND id % 400 = 0
    """,
    """
    INSERT INTO idempotency_conflicts (machine, idempotency_key, event_id, entity_id, trigger,
                                       fingerprint, created_at)
    SELECT 'bench_api_' || (g % 5), 'key-' || (g * 4), g * 4, 'x' || g, 'ship',
           md5(g::text) || md5(g::text), now() - g * interval '1 minute'
    FROM generate_series(1, 1000) AS g
    """,
    """
    INSERT INTO audit_log (at, principal, role, method, route, target, selection, affected,
                           status)
    SELECT now() - g * interval '1 minute', 'key:1:bench', 'operator', 'POST',
           '/api/v1/events/retry', NULL, '{"filter": {"status": "dead"}}'::jsonb, g % 100, 200
    FROM generate_series(1, 10000) AS g
    """,
    """
    INSERT INTO worker_heartbeats (worker_id, host, pid, kind, started_at, beat_at,
                                   progress_at, in_flight, applied, info)
    SELECT 'bench-' || g, 'host-' || g, 1000 + g, 'celery', now() - interval '1 hour', now(),
           now(), 0, 100000 * g, '{}'::jsonb
    FROM generate_series(1, 6) AS g
    """,
)


def seed(url: str, rows: int) -> tuple[str, int]:
    """Seed everything; returns an admin API key and the id of a dead event."""
    engine = fleet_engine(url, pool_size=1)
    try:
        for name in MACHINES:
            versions.publish(engine, machine(name), by=Actor.python("bench", "bench"))
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(SEED_SQL), {"rows": rows})
            for statement in EXTRA_SQL:
                conn.execute(sa.text(statement))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        print(f"seeded {rows:,} events and the rest in {time.perf_counter() - started:.1f} s")
        with engine.connect() as conn:
            dead = conn.execute(sa.text("SELECT min(id) FROM worker_events WHERE status = 'dead'"))
            dead_id = int(dead.scalar_one())
        key = api_keys.create_key(
            engine, role="admin", name="bench", by=Actor.python("bench", "bench")
        ).secret
        return key, dead_id
    finally:
        dispose(engine)


def pages(dead_id: int) -> list[tuple[str, str]]:
    """(label, path) of every page measured."""
    return [
        ("overview (3 h chart)", "/ui"),
        ("overview, 24 h chart", "/ui?hours=24"),
        ("overview live refresh", "/ui/overview/live"),
        ("events, newest", "/ui/events"),
        ("events, dead + error text", "/ui/events?status=dead&error=carrier"),
        ("events, machine + trigger", "/ui/events?machine=bench_api_3&trigger=cancel"),
        ("events, a week-old page", "/ui/events?before=20000"),
        ("events, time window", "/ui/events?created_after=2000-01-01T00:00&status=pending"),
        ("event detail", f"/ui/events/{dead_id}"),
        ("dead letters (groups)", "/ui/dead"),
        ("bulk preview (count)", "/ui/bulk?kind=events&operation=retry&status=dead&error=carrier"),
        ("idempotency lookup", "/ui/idempotency?key=key-4000"),
        ("entities search", "/ui/entities?q=e1234"),
        ("entity", "/ui/entities/bench_api_1/e1"),
        ("machines", "/ui/machines"),
        ("machine + state counts", "/ui/machines/bench_api_2"),
        ("actions, dead", "/ui/actions?status=dead"),
        ("audit log", "/ui/audit"),
    ]


def login(client: httpx.Client, key: str) -> None:
    client.get("/ui/login")
    response = client.post(
        "/ui/login",
        data={"token": key, "next": "/ui", "csrf_token": client.cookies["pystator_csrf"]},
    )
    if response.status_code != 303:
        raise RuntimeError(f"login failed: {response.status_code} {response.text[:200]}")


def measure(client: httpx.Client, path: str, requests: int) -> list[float]:
    client.get(path).raise_for_status()  # warm: plans cached, pages in memory
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)
    with bench_database() as url:
        key, dead_id = seed(url, args.rows)
        with api_server(url, 1) as base, httpx.Client(base_url=base, timeout=60) as client:
            login(client, key)
            results: list[tuple[str, list[float]]] = []
            for label, path in pages(dead_id):
                results.append((label, measure(client, path, args.requests)))
    print(
        f"\nDashboard pages with {args.rows:,} rows in worker_events "
        f"({args.requests} requests each, one API process, PostgreSQL; target {TARGET_MS:.0f} ms)\n"
    )
    print("| page | median ms | p95 ms | max ms | within target |")
    print("|---|---:|---:|---:|---|")
    worst = 0.0
    for label, times in results:
        ordered = sorted(times)
        p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
        worst = max(worst, ordered[-1])
        print(
            f"| {label} | {statistics.median(times):.1f} | {p95:.1f} | {ordered[-1]:.1f} | "
            f"{'yes' if ordered[-1] <= TARGET_MS else 'NO'} |"
        )
    print(f"\nslowest single page load: {worst:.1f} ms")
    return 0


if __name__ == "__main__":
    with report.recorded("dashboard") as run:
        run.exit_code = main()
    sys.exit(run.exit_code)
