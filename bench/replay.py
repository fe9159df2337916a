"""Replay and shadow-mode benchmark.

    .venv/bin/python bench/replay.py [--transitions 1000000] [--rounds 3] [--no-fleet]
        [--workers 1] [--drains 3]

1. **Replay throughput**: ``replay_steps`` (what ``pystator replay`` runs once the history is
   read) over ``--transitions`` recorded transitions of a guarded machine, on one core; best
   of ``--rounds``. Reading the rows from PostgreSQL is measured separately on a smaller set.
2. **Fleet drain with a shadow**: one worker fleet on the local PostgreSQL and a private
   ``redis-server``; the 1,000 x 5 drain of ``bench/fleet.py`` without a shadow and with a
   shadow at 100 % sampling (a candidate identical to the active version, so every event is
   compared), alternated ``--drains`` times in the same run. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import report  # bench/report.py: every run is saved as JSON
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fleet_setup import MACHINE, MACHINES, bench_database, measure_drain, truncate  # noqa: E402
from pystator import StateMachine  # noqa: E402
from pystator.registry import versions  # noqa: E402
from pystator.services import shadow  # noqa: E402
from pystator.services.audit import Actor  # noqa: E402
from pystator.services.replay import replay, replay_steps  # noqa: E402
from pystator.stores.sql.replay_queries import RecordedStep  # noqa: E402
from pystator.stores.sql.schema import transition_history  # noqa: E402
from tests.support.fleet_database import create_schema  # noqa: E402
from tests.support.fleet_processes import RedisServer, WorkerFleet, producer_runtime  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

TARGET_REPLAY = 100_000.0
TARGET_SHADOW_RATIO = 0.85
SQL_ROWS = 100_000
LOAN: dict[str, Any] = {
    "meta": {"version": "1", "machine_name": "loan"},
    "states": [
        {"name": "NEW", "type": "initial"},
        {"name": "REVIEW"},
        {"name": "APPROVED", "type": "terminal"},
        {"name": "REJECTED", "type": "terminal"},
    ],
    "transitions": [
        {"trigger": "submit", "source": "NEW", "dest": "REVIEW", "actions": ["notify"]},
        {
            "trigger": "decide",
            "source": "REVIEW",
            "dest": "APPROVED",
            "guards": [{"expr": "score > 600"}],
        },
        {"trigger": "decide", "source": "REVIEW", "dest": "REJECTED"},
    ],
}


def recorded(transitions: int) -> list[RecordedStep]:
    """``transitions`` recorded steps: loans submitted then decided (half of them approved)."""
    steps: list[RecordedStep] = []
    contexts = [{"score": 500 + 50 * n} for n in range(5)]
    for n in range(transitions // 2):
        entity = f"loan-{n:07d}"
        context = contexts[n % 5]
        target = "APPROVED" if context["score"] > 600 else "REJECTED"
        steps.append(RecordedStep(entity, 1, None, "REVIEW", "submit", n, "event", ["notify"], {}))
        steps.append(
            RecordedStep(entity, 2, "REVIEW", target, "decide", n, "event", [], dict(context))
        )
    return steps


def measure_replay(transitions: int, rounds: int) -> tuple[float, int]:
    machine = StateMachine.from_dict(LOAN)
    steps = recorded(transitions)
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        result = replay_steps(machine, steps)
        seconds = time.perf_counter() - start
        assert result.matched == len(steps) and result.diverged == 0, result.to_dict()
        best = max(best, len(steps) / seconds)
    return best, len(steps)


def measure_sql_replay(url: str, rows: int) -> float:
    """Replay read from PostgreSQL (the rows inserted directly), transitions/s end to end."""
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.delete(transition_history).where(transition_history.c.machine == "loan"))
        batch = []
        for step in recorded(rows):
            batch.append(
                {
                    "machine": "loan",
                    "entity_id": step.entity_id,
                    "version": step.version,
                    "source_state": step.source_state,
                    "target_state": step.target_state,
                    "trigger": step.trigger,
                    "event_id": step.event_id,
                    "origin": "event",
                    "actions": list(step.actions),
                    "payload": None,
                    "guard_context": step.guard_context,
                    "created_at": now,
                }
            )
            if len(batch) == 10_000:
                conn.execute(sa.insert(transition_history), batch)
                batch = []
        if batch:
            conn.execute(sa.insert(transition_history), batch)
    machine = StateMachine.from_dict(LOAN)
    start = time.perf_counter()
    result = replay(engine, "loan", machine)
    seconds = time.perf_counter() - start
    assert result.matched == rows, result.to_dict()
    engine.dispose()
    return rows / seconds


def _machine_config() -> dict[str, Any]:
    path = MACHINES / f"{MACHINE}.yaml"
    document = versions.load_document(path)
    return copy.deepcopy(document)


def measure_shadow(
    url: str, broker: RedisServer, workers: int, drains: int
) -> dict[str, list[float]]:
    """Alternate drains without and with a 100 % shadow on one fleet."""
    engine = sa.create_engine(url)
    truncate(engine)
    config = _machine_config()
    versions.publish(engine, config, by=Actor.python("bench", "bench"))
    rates: dict[str, list[float]] = {"none": [], "shadow": []}
    with (
        tempfile.TemporaryDirectory() as logs,
        producer_runtime(url, broker.url, MACHINES),
        WorkerFleet(
            database_url=url,
            broker_url=broker.url,
            log_dir=Path(logs),
            concurrency=4,
            machines=MACHINES,
            app=None,
        ) as fleet,
    ):
        fleet.start_all(workers)
        measure_drain(engine, url, prefix="warm", entities=200, events_per_entity=2)
        for round_ in range(drains):
            order = ("none", "shadow") if round_ % 2 == 0 else ("shadow", "none")
            for mode in order:  # ABBA: neither mode always runs first
                if mode == "shadow":
                    shadow.start_shadow(engine, MACHINE, config, sample_rate=1.0, by="bench")
                    before = _compared(engine)
                    probes = iter(range(10_000))

                    def compared(
                        b: int = before, r: int = round_, p: Iterator[int] = probes
                    ) -> bool:
                        # probe events until the workers' shadow refresh (2 s) has seen it
                        n = next(p)
                        measure_drain(
                            engine, url, prefix=f"p{r}-{n}", entities=20, events_per_entity=1
                        )
                        return _compared(engine) > b

                    wait_until(compared, timeout=120, interval=0.5, message="shadow comparisons")
                rates[mode].append(measure_drain(engine, url, prefix=f"{mode}{round_}"))
                if mode == "shadow":
                    shadow.stop_shadow(engine, MACHINE)
                    time.sleep(2.5)  # the workers drop the stopped shadow at their next refresh
        fleet.stop_all()
    engine.dispose()
    return rates


def _compared(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT coalesce(sum(matched + mismatched), 0) FROM machine_shadows")
        ).scalar_one()
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-fleet", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--drains", type=int, default=3)
    args = parser.parse_args(argv)

    rate, count = measure_replay(args.transitions, args.rounds)
    rows = [("replay (in memory, one core)", f"{count:,}", f"{rate:,.0f}", f"{TARGET_REPLAY:,.0f}")]
    shadow_rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, bench_database() as url:
        create_schema(url)
        sql_rate = measure_sql_replay(url, SQL_ROWS)
        rows.append(("replay read from PostgreSQL", f"{SQL_ROWS:,}", f"{sql_rate:,.0f}", "—"))
        if not args.no_fleet:
            broker = RedisServer(log_path=Path(tmp) / "redis.log")
            with broker:
                shadow_rates = measure_shadow(url, broker, args.workers, args.drains)
    print("| case | transitions | transitions/s | target |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if shadow_rates:
        none = statistics.median(shadow_rates["none"])
        with_shadow = statistics.median(shadow_rates["shadow"])
        print()
        print(
            f"| fleet drain, {args.workers} worker(s), 1,000 x 5 events | events/s (median of {args.drains}) | ratio | target |"
        )
        print("|---|---:|---:|---:|")
        print(f"| no shadow | {none:,.0f} | 1.00x | |")
        print(
            f"| shadow at 100 % | {with_shadow:,.0f} | {with_shadow / none:.2f}x | "
            f"≥ {TARGET_SHADOW_RATIO:.2f}x |"
        )
        print()
        print(
            "Every drain: "
            + ", ".join(
                f"{mode} {', '.join(f'{r:,.0f}' for r in values)}"
                for mode, values in shadow_rates.items()
            )
        )
    return 0


if __name__ == "__main__":
    with report.recorded("replay") as run:
        run.exit_code = main()
    sys.exit(run.exit_code)
