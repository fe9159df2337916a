"""Discovery benchmark: recover a known 20-state machine from 1,000,000 noisy observations.

    .venv/bin/python bench/discovery.py [--observations 1000000] [--noise 0.05] [--seed 7]
                                        [--no-sqlite] [--postgres URL]

Data: entities walk the machine below from ``s00`` until a terminal state; at each step, with
probability ``--noise``, an entity jumps to a random other state instead (a wrong observation).
Times are strictly increasing per entity; entities interleave, and 0.5 % of the observations
arrive late (after a later one of their entity), which the stores put back in time order.

Measured in one run, on the same data:

* pystator, in-memory store: ingest (building the ``ObservedStateEvent`` objects and recording
  them, 10,000 per call) and build (one pass over the stored observations, thresholds, the
  candidate definition checked and stored), each for time and for peak memory (``tracemalloc``,
  measured in a second, separate pass so it does not slow the timed one);
* the peer, PM4Py's ``discover_dfg`` (directly-follows graph) on a pandas DataFrame of the same
  observations (building the DataFrame is not timed, like pystator's ingest is not part of its
  build), with its peak memory;
* the SQLite store (and PostgreSQL with ``--postgres``): ingest and build, time only.

Quality at the default thresholds (``InferenceThresholds()``): recall over the true edges seen at
least 1,000 times (the target: 100 %) and over all true edges, precision of the kept edges
(target: at least 99 %), and whether pystator's counts equal PM4Py's. Build memory is also shown
for a tenth of the data: it stays flat, as it is bounded by the edges, not by the observations.

Prints tables with ratios; ``bench/report.py`` saves the run as JSON (date, commit, machine).
Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

try:
    import pandas as pd
    import pm4py
except ImportError:  # pragma: no cover - a hint, then the error
    print("bench/discovery.py needs the bench extra: pip install -e '.[bench]'", file=sys.stderr)
    raise

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402  (every run is saved as JSON)
from bench.scratch_db import scratch_database  # noqa: E402
from pystator import migrations  # noqa: E402
from pystator.discovery import (  # noqa: E402
    DiscoveryStore,
    InferenceEngine,
    InferenceThresholds,
    InMemoryDiscoveryStore,
    ObservedStateEvent,
    create_discovery_store,
)

MACHINE = "bench_discovery"
RECALL_SUPPORT = 1000  # true edges seen at least this often must all be recovered
INGEST_CHUNK = 10_000
LATE_SHARE = 0.005
START = datetime(2026, 1, 1, tzinfo=UTC)

# The known machine: 20 states, s00 initial, s18 and s19 terminal; (destination, probability).
TRUE_MACHINE: dict[str, list[tuple[str, float]]] = {
    "s00": [("s01", 0.7), ("s02", 0.3)],
    "s01": [("s03", 0.6), ("s04", 0.4)],
    "s02": [("s04", 0.5), ("s05", 0.5)],
    "s03": [("s06", 0.8), ("s01", 0.2)],
    "s04": [("s06", 0.5), ("s07", 0.5)],
    "s05": [("s07", 0.6), ("s08", 0.4)],
    "s06": [("s09", 0.7), ("s10", 0.3)],
    "s07": [("s10", 0.5), ("s11", 0.5)],
    "s08": [("s11", 0.7), ("s18", 0.3)],
    "s09": [("s12", 0.6), ("s13", 0.4)],
    "s10": [("s13", 0.8), ("s06", 0.2)],
    "s11": [("s14", 0.5), ("s13", 0.5)],
    "s12": [("s15", 0.9), ("s18", 0.1)],
    "s13": [("s15", 0.5), ("s16", 0.5)],
    "s14": [("s16", 0.7), ("s17", 0.3)],
    "s15": [("s19", 0.8), ("s17", 0.2)],
    "s16": [("s19", 0.6), ("s17", 0.4)],
    "s17": [("s19", 0.5), ("s18", 0.5)],
    "s18": [],
    "s19": [],
}
STATES = sorted(TRUE_MACHINE)
TRUE_EDGES = {(a, b) for a, exits in TRUE_MACHINE.items() for b, _p in exits}


# --- data ----------------------------------------------------------------------------------------


@dataclass
class Data:
    """The observations in arrival order, as (entity, state, observed_at) tuples."""

    rows: list[tuple[str, str, datetime]]
    entities: int
    true_counts: dict[tuple[str, str], int] = field(default_factory=dict)


def generate(observations: int, noise: float, seed: int) -> Data:
    """Walks of the known machine with random jumps, interleaved and with a few late arrivals."""
    rng = random.Random(seed)
    timed: list[tuple[float, str, str, datetime]] = []
    counts: dict[tuple[str, str], int] = {}
    entity = 0
    while len(timed) < observations:
        entity += 1
        name = f"e{entity:07d}"
        at = START + timedelta(seconds=rng.uniform(0, 30 * 86400))
        state = "s00"
        while True:
            arrival = at.timestamp() + (rng.uniform(1800, 3600) if rng.random() < LATE_SHARE else 0)
            timed.append((arrival, name, state, at))
            exits = TRUE_MACHINE[state]
            if not exits or len(timed) >= observations:
                break
            if rng.random() < noise:
                following = rng.choice([s for s in STATES if s != state])
            else:
                following = rng.choices([d for d, _ in exits], [p for _, p in exits])[0]
            counts[state, following] = counts.get((state, following), 0) + 1
            state = following
            at += timedelta(seconds=rng.uniform(1, 600))
    timed.sort(key=lambda row: row[0])
    rows = [(name, state, at) for _arrival, name, state, at in timed]
    true_counts = {edge: n for edge, n in counts.items() if edge in TRUE_EDGES}
    return Data(rows=rows, entities=entity, true_counts=true_counts)


def events(data: Data) -> Iterator[ObservedStateEvent]:
    for name, state, at in data.rows:
        yield ObservedStateEvent(
            entity_id=name, machine_name=MACHINE, state=state, observed_at=at, source="bench"
        )


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Measured:
    seconds: float
    peak_bytes: int | None = None
    value: Any = None


def timed(action: Callable[[], Any]) -> Measured:
    gc.collect()
    start = time.perf_counter()
    value = action()
    return Measured(time.perf_counter() - start, value=value)


def peak(action: Callable[[], Any]) -> int:
    """Peak bytes allocated (tracemalloc) while ``action`` runs, above what was there before."""
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        action()
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(0, top - base)


def ingest(store: DiscoveryStore, data: Data) -> InferenceEngine:
    engine = InferenceEngine(store, thresholds=InferenceThresholds())
    chunk: list[ObservedStateEvent] = []
    for event in events(data):
        chunk.append(event)
        if len(chunk) == INGEST_CHUNK:
            engine.record_observations(MACHINE, chunk)
            chunk = []
    if chunk:
        engine.record_observations(MACHINE, chunk)
    return engine


def pm4py_frame(data: Data) -> Any:
    return pd.DataFrame(
        {
            "case:concept:name": [r[0] for r in data.rows],
            "concept:name": [r[1] for r in data.rows],
            "time:timestamp": pd.to_datetime([r[2] for r in data.rows], utc=True),
        }
    )


def pm4py_dfg(frame: Any) -> dict[tuple[str, str], int]:
    dfg, _start, _end = pm4py.discover_dfg(
        frame,
        case_id_key="case:concept:name",
        activity_key="concept:name",
        timestamp_key="time:timestamp",
    )
    return {(str(a), str(b)): int(n) for (a, b), n in dfg.items()}


# --- quality -------------------------------------------------------------------------------------


def quality(kept: set[tuple[str, str]], data: Data) -> dict[str, float]:
    supported = {e for e, n in data.true_counts.items() if n >= RECALL_SUPPORT}
    return {
        "recall_supported": len(kept & supported) / len(supported),
        "recall_all": len(kept & TRUE_EDGES) / len(TRUE_EDGES),
        "precision": len(kept & TRUE_EDGES) / len(kept) if kept else 0.0,
        "kept_edges": len(kept),
        "true_edges": len(TRUE_EDGES),
        "true_edges_supported": len(supported),
    }


# --- the run -------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    print(f"generating {args.observations:,} observations (noise {args.noise:.0%}) ...", flush=True)
    data = generate(args.observations, args.noise, args.seed)
    n = len(data.rows)
    print(f"  {n:,} observations of {data.entities:,} entities")

    results: dict[str, Any] = {}
    memory, ours = measure_memory_store(data)
    results["pystator_memory"] = memory
    print("PM4Py discover_dfg ...", flush=True)
    results["pm4py"] = measure_pm4py(data, ours)
    for label, url in _sql_urls(args):
        print(f"{label} store ...", flush=True)
        with url as database:
            if label == "postgresql":
                migrations.upgrade(database)
            sql_store = create_discovery_store(database)
            try:
                sql_ingest = timed(lambda s=sql_store: ingest(s, data))
                sql_build = timed(lambda e=sql_ingest.value: e.build_candidate(MACHINE))
                results[f"pystator_{label}"] = {
                    "ingest_seconds": sql_ingest.seconds,
                    "build_seconds": sql_build.seconds,
                    "same_edges_as_memory": {e.pair: e.count for e in sql_build.value.edges}
                    == ours,
                }
            finally:
                sql_store.close()
    return {
        "benchmark": "discovery",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": {
            "observations": n,
            "entities": data.entities,
            "noise": args.noise,
            "seed": args.seed,
            "late_share": LATE_SHARE,
            "states": len(STATES),
            "thresholds": InferenceThresholds().to_dict(),
            "recall_support": RECALL_SUPPORT,
        },
        "results": results,
    }


def measure_memory_store(data: Data) -> tuple[dict[str, Any], dict[tuple[str, str], int]]:
    """Ingest and build on the in-memory store: times, quality, then peak memory apart."""
    store = InMemoryDiscoveryStore()
    ingested = timed(lambda: ingest(store, data))
    engine: InferenceEngine = ingested.value
    built = timed(lambda: engine.build_candidate(MACHINE))
    candidate = built.value
    measured: dict[str, Any] = {
        "ingest_seconds": ingested.seconds,
        "build_seconds": built.seconds,
        "quality": quality({e.pair for e in candidate.kept_edges}, data),
        "late_observations": candidate.late_count,
        # peak memory in separate passes (tracemalloc slows allocation-heavy code down)
        "build_peak_bytes": peak(lambda: engine.build_candidate(MACHINE)),
        "ingest_peak_bytes": peak(lambda: ingest(InMemoryDiscoveryStore(), data)),
    }
    tenth = Data(rows=[r for r in data.rows if int(r[0][1:]) <= data.entities // 10], entities=0)
    small = ingest(InMemoryDiscoveryStore(), tenth)
    measured["build_peak_bytes_tenth"] = peak(lambda: small.build_candidate(MACHINE))
    measured["tenth_observations"] = len(tenth.rows)
    return measured, {e.pair: e.count for e in candidate.edges}


def measure_pm4py(data: Data, ours: dict[tuple[str, str], int]) -> dict[str, Any]:
    """PM4Py's directly-follows graph on a DataFrame of the same observations."""
    frame = pm4py_frame(data)
    measured = timed(lambda: pm4py_dfg(frame))
    theirs: dict[tuple[str, str], int] = measured.value
    return {
        "build_seconds": measured.seconds,
        "build_peak_bytes": peak(lambda: pm4py_dfg(frame)),
        "quality_unfiltered": quality(set(theirs), data),
        "counts_equal_pystator": theirs == ours,
        "version": version("pm4py"),
    }


def _sql_urls(args: argparse.Namespace) -> Iterator[tuple[str, AbstractContextManager[str]]]:
    if args.sqlite:
        yield "sqlite", _sqlite_file()
    if args.postgres:
        yield "postgresql", scratch_database(args.postgres, prefix="pystator_bench_discovery")


@contextmanager
def _sqlite_file() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        yield f"sqlite:///{directory}/discovery.db"


# --- report --------------------------------------------------------------------------------------


def print_report(doc: dict[str, Any]) -> None:
    """The run as markdown tables (bench/report.py keeps them as tables in the JSON record)."""
    r = doc["results"]
    n = doc["parameters"]["observations"]
    mem, pm = r["pystator_memory"], r["pm4py"]
    mib = 1024 * 1024
    print(
        f"{n:,} observations, {doc['parameters']['entities']:,} entities, "
        f"{doc['parameters']['noise']:.0%} noise, thresholds {doc['parameters']['thresholds']}"
    )
    print()
    print("| step | seconds | observations/s | peak MiB | vs PM4Py |")
    print("|---|---|---|---|---|")

    def row(label: str, seconds: float, peak_bytes: int | None, versus: float | None) -> None:
        peak = f"{peak_bytes / mib:.1f}" if peak_bytes is not None else "-"
        ratio = f"{versus:.2f}x" if versus is not None else ""
        print(f"| {label} | {seconds:.2f} | {n / seconds:,.0f} | {peak} | {ratio} |")

    row("pystator ingest (memory store)", mem["ingest_seconds"], mem["ingest_peak_bytes"], None)
    row(
        "pystator build (memory store)",
        mem["build_seconds"],
        mem["build_peak_bytes"],
        pm["build_seconds"] / mem["build_seconds"],
    )
    row("PM4Py discover_dfg (DataFrame)", pm["build_seconds"], pm["build_peak_bytes"], 1.0)
    for label in ("sqlite", "postgresql"):
        sql = r.get(f"pystator_{label}")
        if sql:
            row(f"pystator ingest ({label} store)", sql["ingest_seconds"], None, None)
            row(
                f"pystator build ({label} store)",
                sql["build_seconds"],
                None,
                pm["build_seconds"] / sql["build_seconds"],
            )
    print()
    print("vs PM4Py: PM4Py's build time / this build time; above 1 is faster than PM4Py.")
    print()
    q, pq = mem["quality"], pm["quality_unfiltered"]
    print("| edge recovery | pystator | PM4Py (all DFG edges) |")
    print("|---|---|---|")
    print(
        f"| recall, true edges seen >= {RECALL_SUPPORT:,}x | {q['recall_supported']:.1%} "
        f"| {pq['recall_supported']:.1%} |"
    )
    print(f"| recall, all true edges | {q['recall_all']:.1%} | {pq['recall_all']:.1%} |")
    print(f"| precision | {q['precision']:.1%} | {pq['precision']:.1%} |")
    print(f"| edges kept | {q['kept_edges']} | {pq['kept_edges']} |")
    print()
    print(f"counts equal PM4Py's directly-follows counts: {pm['counts_equal_pystator']}")
    for label in ("sqlite", "postgresql"):
        sql = r.get(f"pystator_{label}")
        if sql:
            print(f"{label} store infers the same edges and counts: {sql['same_edges_as_memory']}")
    print(f"late arrivals put back in time order: {mem['late_observations']:,}")
    print(
        f"build peak memory: {mem['build_peak_bytes'] / mib:.2f} MiB for {n:,} observations, "
        f"{mem['build_peak_bytes_tenth'] / mib:.2f} MiB for {mem['tenth_observations']:,}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-sqlite", dest="sqlite", action="store_false")
    parser.add_argument("--postgres", metavar="URL", help="also the PostgreSQL store (server URL)")
    args = parser.parse_args()
    print_report(run(args))
    return 0


if __name__ == "__main__":
    with report.recorded("discovery") as recording:
        recording.exit_code = main()
    sys.exit(recording.exit_code)
