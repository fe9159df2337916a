"""Benchmark results as JSON, and the documentation's Benchmarks page rendered from them.

Every script in ``bench/`` runs its ``main`` inside :func:`recorded`: what it prints still goes
to the terminal, and is also saved as ``bench/results/<name>-<date>-<time>.json`` with the date,
the commit, the machine and a calibration (the plain ``process`` rate of ``bench/core.py
--quick``, measured just before writing, so runs on a slower or busier machine can be told
apart). The markdown tables a script prints are stored as tables, everything else as text.

The site's hook (``docs/_hooks/pystator_docs.py``) calls :func:`render_page`: the latest record
of each benchmark in full, then every earlier one, newest first. Nothing on that page is typed
by hand; records imported from the former README say so (``source``).

Set ``PYSTATOR_BENCH_RESULTS`` to write somewhere else (or to ``-`` to write nothing).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Benchmark:
    """One benchmark script: how the page names it, and how it is run."""

    name: str
    title: str
    command: str
    method: str


#: Every benchmark, in the order of the page. ``method`` says what is measured (no numbers:
#: those come from the records).
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        name="core",
        title="Engine: transitions per second",
        command=".venv/bin/python bench/core.py   # ~3 min; --quick for a smoke run",
        method=(
            "One pystator operation is one `machine.process(state, trigger, context)`: stateless, "
            "it returns the planned actions and timers. The peers, python-statemachine and "
            "transitions, are stateful objects whose operation is one `send` / trigger call on "
            "machines built to match (they cycle back so every call is a real transition). They "
            "have no expression language or declarative checks and effects, so their `expr:` and "
            "`check:` rows run the same Python guard as the named-guard row, and their effects "
            "row a Python callback setting the same fields. Best of N rounds after a warm-up."
        ),
    ),
    Benchmark(
        name="store",
        title="Persistence: orchestrated transitions per second",
        command=".venv/bin/python bench/store.py  # ~1 min; throw-away PostgreSQL database and Redis prefix",
        method=(
            "One orchestrated transition is `Orchestrator.process_event`: load the record, "
            "compute, write it with a version check together with its history row (one "
            "transaction, or one Lua call), run (no) actions. Single thread, no contention. Each "
            "SQL row is a durable commit, so persistence, not the engine, sets the pace; the "
            "fleet batches many events per transaction to get past that."
        ),
    ),
    Benchmark(
        name="fleet",
        title="Fleet: submit, drain, latency",
        command=".venv/bin/python bench/fleet.py  # ~4 min: its own database and a private redis-server",
        method=(
            "`pystator worker --concurrency 4 --pool threads` processes on the local PostgreSQL "
            "with a private Redis broker, driving `bench/machines/bench_cycle.yaml` (A → B → C → "
            "A, no guards or actions). Producer, workers, PostgreSQL and Redis share the machine's "
            "cores. Latency is seen from the producer: from before `submit_event_sync` until a "
            "poll first sees the event applied. The peer is the round trip of a no-op Celery task "
            "on the same broker: what a hand-rolled Celery FSM worker could reach at best."
        ),
    ),
    Benchmark(
        name="fleet_latency",
        title="Fleet: latency under load",
        command=".venv/bin/python bench/fleet_latency.py  # ~1 min (also: bench/fleet.py --latency)",
        method=(
            "Drain: the fleet benchmark's 1,000 x 5 drain, three times, before the latency runs. "
            "Open loop: fresh entities submitted on a fixed schedule whatever the fleet does; "
            "latency is `transition_history.created_at - worker_events.created_at` (the "
            "database's own timestamps). After a burst: 10,000 events over 2,000 entities, then "
            "100 single events one after another, each timed from the producer. CPU per event: "
            "each process's user + system time over the open-loop phase, divided by its events."
        ),
    ),
    Benchmark(
        name="fleet_cold",
        title="Fleet: cold start",
        command=".venv/bin/python bench/fleet_latency.py --mode cold  # ~3 min",
        method=(
            "A warm fleet first (the 1,000 x 5 drain three times, a burst of 10,000 single "
            "submits then 100 fresh events), then the workers are stopped, 10,000 events over "
            "2,000 entities are submitted one by one with no worker running, and the workers are "
            "started again: nudges in the broker before and after, time to the first applied "
            "event (from the spawn and from the first worker's start-up drain) beside the import "
            "floor of that moment (as many interpreters as workers, spawned together, importing "
            "only SQLAlchemy, psycopg, structlog and PyYAML), the drain rate "
            "(first to last applied event, the database's clock), then 100 fresh events one "
            "after another, each timed from the producer."
        ),
    ),
    Benchmark(
        name="fleet_scale_out",
        title="Fleet: scale-out under load",
        command=".venv/bin/python bench/fleet_latency.py --mode scale-out  # ~1 min",
        method=(
            "One worker under open-loop load (500 events/s for 20 s, fresh entities), two more "
            "started at 10 s; latency of each event (`transition_history.created_at - "
            "worker_events.created_at`) for the events submitted before and after the add."
        ),
    ),
    Benchmark(
        name="replay",
        title="Replay and shadow mode",
        command=".venv/bin/python bench/replay.py   # ~3 min; --no-fleet for replay alone",
        method=(
            "Replay: `replay_steps` (what `pystator replay` runs once the rows are read) over "
            "1,000,000 recorded transitions of a guarded machine (submit, then a decide whose "
            "`expr:` guard reads the recorded context), one core, best of 3; then the same "
            "report read from PostgreSQL end to end over 100,000 rows. Shadow: one worker "
            "fleet drains 1,000 x 5 events without a shadow and with a shadow at 100 % "
            "sampling (a candidate identical to the active version: every event compared), "
            "alternated in the same run; median of each."
        ),
    ),
    Benchmark(
        name="timers",
        title="Timers: firing lateness and worker memory",
        command=".venv/bin/python bench/timers.py  # ~25 min; --quick ~5 min; --sigkill-only ~4 min",
        method=(
            "Two `pystator worker` processes per scheduler on the local PostgreSQL, Redis and "
            "RabbitMQ. Lateness = the timer's transition applied (`transition_history."
            "created_at`) - its due time; `fired` = the timer turned into an event - due. Peers in "
            "the same run: plain Celery ETA tasks on each broker. The memory part arms 100,000 "
            "timers due in an hour; the SIGKILL part kills a worker just before timers fall due."
        ),
    ),
    Benchmark(
        name="api",
        title="HTTP API: submit rate, listing latency, SSE lag, webhook deliveries",
        command=".venv/bin/python bench/api.py  # ~5 min: its own databases",
        method=(
            "`pystator api --workers 2` on the local PostgreSQL with an operator API key (auth "
            "and audit rows on): single `POST /api/v1/events` from 32 keep-alive connections, "
            "batches of 1,000 from 4, then `GET /api/v1/events` per filter set over 1,000,000 "
            "seeded events (every other request fetching the next page by cursor). Then "
            "(`bench/api_live.py`, `--live-only` for these alone): two `pystator worker` "
            "processes drain a burst of 4,000 x 5 events while one client reads "
            "`GET /api/v1/transitions/stream`; lag = arrival - the applying transaction's start "
            "(`at`), and - the row's first visibility to a plain reader (its commit); the "
            "`keeps up` line compares the lag p99 of the first and last quarter of the burst "
            "(in apply order) and the distinct transitions delivered with those committed. "
            "Webhook deliveries/s: 2,000 deliveries queued at once, sent by the workers' relays "
            "to a local HTTP/1.1 (keep-alive) receiver."
        ),
    ),
    Benchmark(
        name="dashboard",
        title="Dashboard: page times",
        command=".venv/bin/python bench/dashboard.py  # ~1 min: its own database",
        method=(
            "The API benchmark's 1,000,000 events plus what the other pages read (entities, "
            "history, outbox rows, a day of roll-ups, repeated keys, audit rows); one `pystator "
            "api` process with auth on, logged in through `/ui/login`; each page fetched 20 "
            "times (server time plus a loopback hop)."
        ),
    ),
    Benchmark(
        name="retention",
        title="Retention: pruning beside a draining fleet",
        command=".venv/bin/python bench/retention.py  # ~5 min: its own database and redis-server",
        method=(
            "5,000,000 completed events past their window are written into `worker_events`. The "
            "pruner first runs alone at each pacing; then 3 workers drain 2,000 entities x 5 "
            "events five times without and five times with a pruner pass beside them, "
            "alternately. `--only-history-day` compares deleting one day of history row by row "
            "with dropping its partition."
        ),
    ),
    Benchmark(
        name="discovery",
        title="Discovery: recovering a machine from noisy observations",
        command=".venv/bin/python bench/discovery.py  # needs the bench extra (PM4Py); ~2 min",
        method=(
            "1,000,000 observations of entities walking a known 20-state machine, 5 % of them "
            "random jumps and 0.5 % arriving late. pystator's in-memory store ingests them and "
            "builds a candidate in one pass; the peer, PM4Py's directly-follows discovery "
            "(`discover_dfg`), runs on a DataFrame of the same observations in the same run. "
            "Edge recovery is scored against the known machine at the default thresholds."
        ),
    ),
)


# --- writing ---------------------------------------------------------------------------------


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()


@dataclass(slots=True)
class Run:
    """The body of :func:`recorded` sets ``exit_code``; only a run that exits 0 is written."""

    exit_code: int | None = None


@contextlib.contextmanager
def recorded(name: str, argv: list[str] | None = None) -> Iterator[Run]:
    """Run a benchmark's body, keep what it prints, and write it as a JSON record afterwards.

    Nothing is written when the body raises or sets a non-zero ``exit_code`` (a failed run is
    not a result)::

        with report.recorded("core") as run:
            run.exit_code = main()
        sys.exit(run.exit_code)
    """
    if name not in {b.name for b in BENCHMARKS}:
        raise ValueError(f"unknown benchmark {name!r}: add it to bench/report.py BENCHMARKS")
    tee = _Tee(sys.stdout)
    run = Run()
    started = datetime.now(UTC)
    with contextlib.redirect_stdout(tee):  # type: ignore[type-var]
        yield run
    target = os.environ.get("PYSTATOR_BENCH_RESULTS", str(RESULTS_DIR))
    if target == "-" or run.exit_code not in (0, None):
        return
    record = build_record(
        name,
        output=tee.copy.getvalue(),
        argv=sys.argv[1:] if argv is None else argv,
        started=started,
    )
    path = write_record(record, Path(target))
    print(f"\nresults written to {path}", file=sys.stderr)


def build_record(name: str, *, output: str, argv: list[str], started: datetime) -> dict[str, Any]:
    """The JSON record of one run: metadata, then the printed output split into sections."""
    return {
        "schema": SCHEMA_VERSION,
        "benchmark": name,
        "date": started.isoformat(timespec="seconds"),
        "argv": argv,
        "source": "run",
        "commit": _commit(),
        "machine": machine_info(),
        "calibration": calibrate(),
        "sections": split_sections(output),
    }


def write_record(record: dict[str, Any], directory: Path) -> Path:
    """Write ``record`` as ``<benchmark>-<date>-<time>.json`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = record["date"][:19].replace(":", "").replace("T", "-")
    path = directory / f"{record['benchmark']}-{stamp}.json"
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def split_sections(output: str) -> list[dict[str, Any]]:
    """Markdown tables in ``output`` become table sections; other runs of lines, text sections."""
    sections: list[dict[str, Any]] = []
    text: list[str] = []
    table: list[str] = []

    def flush_text() -> None:
        body = "\n".join(text).strip("\n")
        if body.strip():
            sections.append({"kind": "text", "text": body})
        text.clear()

    def flush_table() -> None:
        parsed = _parse_table(table)
        if parsed is None:
            text.extend(table)
        else:
            flush_text()
            sections.append(parsed)
        table.clear()

    for line in output.splitlines():
        if line.lstrip().startswith("|"):
            table.append(line.strip())
            continue
        if table:
            flush_table()
        text.append(line)
    if table:
        flush_table()
    flush_text()
    return sections


def _parse_table(lines: list[str]) -> dict[str, Any] | None:
    if len(lines) < 2 or set(lines[1].replace("|", "").strip()) - set("-: "):
        return None
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in lines]
    align = ["right" if c.endswith(":") else "left" for c in cells[1]]
    return {"kind": "table", "columns": cells[0], "align": align, "rows": cells[2:]}


def _commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }


def calibrate() -> dict[str, Any]:
    """The plain ``process`` rate of ``bench/core.py --quick`` on this machine, right now."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import core  # bench/ is a folder of scripts, not a package

        rate = core.measure(core.ours_plain(), rounds=2, round_seconds=0.02)
    finally:
        sys.path.pop(0)
    return {"process_per_second": round(rate), "how": "bench/core.py --quick: plain process"}


# --- reading and rendering ---------------------------------------------------------------------


def load_records(directory: Path = RESULTS_DIR) -> list[dict[str, Any]]:
    """Every record in ``directory``, oldest first; a file that is not a record is an error."""
    records = []
    for path in sorted(directory.glob("*.json")):
        record = json.loads(path.read_text())
        missing = {"benchmark", "date", "sections", "source"} - set(record)
        if missing:
            raise ValueError(f"{path}: not a benchmark record (missing {sorted(missing)})")
        record["_file"] = path.name
        records.append(record)
    records.sort(key=lambda r: (r["date"], r["_file"]))
    return records


def render_page(records: list[dict[str, Any]]) -> str:
    """The Benchmarks page body (markdown): per benchmark, the latest record, then its history."""
    known = {b.name for b in BENCHMARKS}
    unknown = sorted({r["benchmark"] for r in records} - known)
    if unknown:
        raise ValueError(f"records of unknown benchmarks: {unknown}")
    out: list[str] = []
    for bench in BENCHMARKS:
        runs = [r for r in records if r["benchmark"] == bench.name]
        out += [f"## {bench.title}", "", bench.method, "", "```bash", bench.command, "```", ""]
        if not runs:
            out += ["No recorded run yet.", ""]
            continue
        latest, *older = reversed(runs)
        out += ["### Latest run", "", *_render_record(latest, indent=""), ""]
        out += ["### History", "", *_history_table(runs), ""]
        for record in older:
            out.append(f'??? note "{_label(record)}"')
            out += ["", *_render_record(record, indent="    "), ""]
    return "\n".join(out)


def _label(record: dict[str, Any]) -> str:
    date = record["date"][:10]
    source = " (imported from the README)" if record["source"] == "readme" else ""
    return f"{date} · {record.get('commit', 'unknown')}{source}"


def _history_table(runs: list[dict[str, Any]]) -> list[str]:
    rows = ["| date | commit | source | machine | calibration (`process`/s) | arguments |"]
    rows.append("|---|---|---|---|---:|---|")
    for r in reversed(runs):
        machine = r.get("machine") or {}
        described = machine.get("description") or (
            f"{machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}"
        )
        cal = (r.get("calibration") or {}).get("process_per_second")
        cal_text = f"{cal:,}" if isinstance(cal, int) else "—"
        source = "imported from the README" if r["source"] == "readme" else "bench run"
        args = f"`{' '.join(r['argv'])}`" if r.get("argv") else "—"
        rows.append(
            f"| {r['date'][:10]} | {r.get('commit', 'unknown')} | {source} | {described} "
            f"| {cal_text} | {args} |"
        )
    return rows


def _render_record(record: dict[str, Any], *, indent: str) -> list[str]:
    lines = [f"*{_label(record)}*", ""]
    if record.get("summary"):
        lines += [record["summary"], ""]
    for section in record["sections"]:
        if section["kind"] == "table":
            if section.get("title"):
                lines += [f"**{section['title']}**", ""]
            lines.append("| " + " | ".join(section["columns"]) + " |")
            lines.append(
                "|" + "|".join("---:" if a == "right" else "---" for a in section["align"]) + "|"
            )
            lines += ["| " + " | ".join(row) + " |" for row in section["rows"]]
            lines.append("")
        elif section["kind"] == "text":
            lines += ["```text", section["text"], "```", ""]
        elif section["kind"] == "notes":
            lines += [f"- {note}" for note in section["items"]]
            lines.append("")
        else:
            raise ValueError(f"{record['_file']}: unknown section kind {section['kind']!r}")
    return [indent + line if line else line for line in lines]
