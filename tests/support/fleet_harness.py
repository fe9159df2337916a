"""Process management and invariant checks for the fleet fault tests and ``bench/fleet.py``.

Everything here runs real processes: a private ``redis-server`` (so a test may restart its broker
without disturbing anyone else's), ``pystator worker`` processes that can be SIGKILLed and
restarted, and SQL checks of the fleet invariants of DESIGN.md against the real tables.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
FLEET_MACHINES = ROOT / "tests" / "fixtures" / "fleet"
FLEET_APP = "tests.support.fleet_app:factory"
FLEET_MACHINE_NAME = "fleet_cycle"

POLL_INTERVAL_SECONDS = 0.2
REDIS_START_TIMEOUT_SECONDS = 10.0
WORKER_STOP_TIMEOUT_SECONDS = 20.0
FINAL_STATUSES = frozenset({"completed", "rejected", "dead"})


# ---------------------------------------------------------------------------- waiting helpers


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float = POLL_INTERVAL_SECONDS,
    message: str = "condition",
) -> None:
    """Poll ``predicate`` until it is true; raise ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not reached within {timeout:.0f}s")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------- private Redis


@dataclass
class RedisServer:
    """A throwaway ``redis-server`` on a free port, no persistence: a broker a test may restart."""

    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        log = str(self.log_path) if self.log_path else ""
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--logfile", log]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(
            lambda: port_open(self.port),
            timeout=REDIS_START_TIMEOUT_SECONDS,
            message=f"redis-server on port {self.port}",
        )

    def stop(self, *, hard: bool = False) -> None:
        """Stop the server (SIGKILL when ``hard``); queued messages are lost, as in a crash."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        self.proc.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        self.proc = None

    def restart(self, *, down_seconds: float = 1.0) -> None:
        """Crash the broker, keep it down for ``down_seconds``, start it again on the same port."""
        self.stop(hard=True)
        time.sleep(down_seconds)  # the outage itself is what is being simulated
        self.start()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop(hard=True)


# ---------------------------------------------------------------------------- worker processes


def pystator_command() -> list[str]:
    """The command that runs the ``pystator`` CLI of this checkout."""
    script = Path(sys.executable).with_name("pystator")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pystator.cli"]


@dataclass
class WorkerFleet:
    """``pystator worker`` processes, each in its own process group so SIGKILL takes it whole."""

    database_url: str
    broker_url: str
    log_dir: Path
    concurrency: int = 4
    pool: str = "threads"
    machines: Path = FLEET_MACHINES
    app: str | None = FLEET_APP
    extra_args: Sequence[str] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: int = 0
    kills: int = 0

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PYSTATOR_DATABASE_URL=self.database_url,
            PYSTATOR_BROKER_URL=self.broker_url,
            PYSTATOR_MACHINES=str(self.machines),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
            PYSTATOR_LOG_FORMAT="json",
        )
        if self.app:
            env["PYSTATOR_APP"] = self.app
        env.update(self.extra_env)
        return env

    def args(self) -> list[str]:
        args = [*pystator_command(), "worker", "--concurrency", str(self.concurrency)]
        args += ["--pool", self.pool, "--machines", str(self.machines)]
        if self.app:
            args += ["--app", self.app]
        return [*args, *self.extra_args]

    def start(self, slot: int) -> None:
        """Start (or restart) the worker in ``slot``."""
        self.starts += 1
        log = (self.log_dir / f"worker-{slot}-{self.starts}.log").open("wb")
        with log:
            self.procs[slot] = subprocess.Popen(
                self.args(),
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_all(self, count: int) -> None:
        for slot in range(count):
            self.start(slot)

    def kill(self, slot: int) -> None:
        """SIGKILL the worker's whole process group (a pod or node dying mid-work)."""
        proc = self.procs.pop(slot)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        self.kills += 1

    def kill_and_restart(self, rng: random.Random) -> int:
        """Kill a random live worker and start a fresh one in its slot; returns the slot."""
        slot = rng.choice(sorted(self.procs))
        self.kill(slot)
        self.start(slot)
        return slot

    def stop(self, slot: int) -> int | None:
        """SIGTERM (warm shutdown), then SIGKILL the group if it does not exit in time."""
        proc = self.procs.pop(slot)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
            return None

    def stop_all(self) -> None:
        for slot in sorted(self.procs):
            self.stop(slot)

    def exited(self) -> dict[int, int]:
        """Slots whose process exited on its own, with the exit code."""
        return {s: p.returncode for s, p in self.procs.items() if p.poll() is not None}

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of every worker log (for assertion messages)."""
        out = []
        for path in sorted(self.log_dir.glob("worker-*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def __enter__(self) -> WorkerFleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        for slot in list(self.procs):
            self.kill(slot)


# ---------------------------------------------------------------------------- the producer side


@contextlib.contextmanager
def producer_runtime(
    database_url: str,
    broker_url: str,
    machines: Path = FLEET_MACHINES,
    *,
    queue: str | None = None,
) -> Iterator[Any]:
    """Make ``submit_event_sync(..., db_url=database_url)`` in this process nudge ``broker_url``.

    The environment of the test process names no broker; a runtime wired from explicit settings
    is installed for ``database_url`` instead (and forgotten on exit).
    """
    from dataclasses import replace

    from pystator.config.settings import load_settings
    from pystator.fleet.runtime import Runtime, set_default_runtime

    settings = replace(
        load_settings(),
        database_url=database_url,
        broker_url=broker_url,
        machines=str(machines),
        app=None,
        **({"queue": queue} if queue else {}),
    )
    runtime = Runtime.from_settings(settings)
    set_default_runtime(runtime, db_url=database_url)
    try:
        yield runtime
    finally:
        set_default_runtime(None, db_url=database_url)
        flush = getattr(runtime.nudger, "flush", None)
        if flush is not None:
            flush()
        runtime.close()


# ---------------------------------------------------------------------------- database helpers


def create_schema(url: str) -> None:
    """Bring the database to the current schema (Alembic when available, else the metadata)."""
    try:
        from pystator.stores.sql.migrator import upgrade
    except ImportError:
        upgrade = None
    if upgrade is not None:
        upgrade(url)
        return
    from pystator.stores.sql.schema import metadata

    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


ACTION_LOG_DDL = """
CREATE TABLE IF NOT EXISTS action_log (
    id BIGSERIAL PRIMARY KEY,
    token TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    event_id BIGINT,
    action TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def create_action_log(engine: sa.Engine) -> None:
    """The table the fleet app's actions append ``(token, entity, event)`` rows to."""
    with engine.begin() as conn:
        conn.execute(sa.text(ACTION_LOG_DDL))


def status_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, count(*) FROM worker_events GROUP BY status"))
        return {str(s): int(n) for s, n in rows}


def pending_count(engine: sa.Engine) -> int:
    return status_counts(engine).get("pending", 0)


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


# ---------------------------------------------------------------------------- invariant checks


@dataclass
class InvariantReport:
    """What the checks found; ``problems`` is empty when every invariant holds."""

    problems: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def fail(self, message: str, examples: Iterable[object] = ()) -> None:
        shown = list(examples)[:5]
        self.problems.append(f"{message}{': ' + repr(shown) if shown else ''}")

    def __str__(self) -> str:
        return "\n".join([f"stats: {self.stats}", *self.problems])


def _rows(conn: sa.Connection, sql: str, **params: Any) -> list[sa.Row[Any]]:
    return list(conn.execute(sa.text(sql), params))


def check_invariants(
    engine: sa.Engine,
    accepted: Mapping[int, PlannedEvent],
    duplicates: int,
    *,
    duplicate_slack: int = 0,
    machine: str = FLEET_MACHINE_NAME,
    check_actions: bool = True,
) -> InvariantReport:
    """Check the fleet invariants of DESIGN.md on the tables after a run.

    ``accepted`` maps every event id a producer got back to what was submitted (duplicates
    collapse onto the first id); ``duplicates`` is how many submissions re-used a key, and
    ``duplicate_slack`` how many more the store may have counted (submissions retried after an
    error that had in fact been inserted).
    """
    report = InvariantReport()
    with engine.connect() as conn:
        _check_no_loss(conn, report, accepted, (duplicates, duplicates + duplicate_slack), machine)
        _check_once(conn, report, machine)
        _check_order(conn, report, machine)
        _check_replay(conn, report, accepted, machine)
        if check_actions:
            _check_actions(conn, report, machine)
    return report


def _check_no_loss(
    conn: sa.Connection,
    report: InvariantReport,
    accepted: Mapping[int, PlannedEvent],
    duplicates: tuple[int, int],
    machine: str,
) -> None:
    rows = _rows(
        conn,
        "SELECT id, status, duplicate_count FROM worker_events WHERE machine = :m",
        m=machine,
    )
    status = {int(r.id): str(r.status) for r in rows}
    report.stats["statuses"] = dict(sorted(_count(status.values()).items()))
    missing = sorted(set(accepted) - set(status))
    if missing:
        report.fail(f"{len(missing)} accepted events have no row (lost)", missing)
    unfinished = sorted(i for i in accepted if status.get(i) not in FINAL_STATUSES)
    if unfinished:
        report.fail(
            f"{len(unfinished)} accepted events are not completed/rejected/dead",
            [(i, status.get(i)) for i in unfinished],
        )
    extra = sorted(set(status) - set(accepted))
    if extra:
        report.fail(f"{len(extra)} event rows nobody submitted", extra)
    counted = sum(int(r.duplicate_count) for r in rows)
    low, high = duplicates
    report.stats["duplicates_submitted"] = low
    report.stats["duplicates_counted"] = counted
    if not low <= counted <= high:
        report.fail(f"duplicate_count sums to {counted}, expected {low}..{high}")


def _check_once(conn: sa.Connection, report: InvariantReport, machine: str) -> None:
    twice = _rows(
        conn,
        "SELECT event_id, count(*) AS n FROM transition_history WHERE machine = :m "
        "AND event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1",
        m=machine,
    )
    if twice:
        report.fail(f"{len(twice)} events changed state more than once", twice)
    not_completed = _rows(
        conn,
        "SELECT h.event_id, e.status FROM transition_history h JOIN worker_events e "
        "ON e.id = h.event_id WHERE h.machine = :m AND e.status <> 'completed'",
        m=machine,
    )
    if not_completed:
        report.fail(f"{len(not_completed)} history rows for events not completed", not_completed)
    gaps = _rows(
        conn,
        "SELECT s.entity_id, s.version, count(h.id) AS n FROM entity_states s "
        "LEFT JOIN transition_history h ON h.machine = s.machine AND h.entity_id = s.entity_id "
        "WHERE s.machine = :m GROUP BY s.entity_id, s.version HAVING count(h.id) <> s.version",
        m=machine,
    )
    if gaps:
        report.fail(f"{len(gaps)} entities whose version is not their history length", gaps)


def _check_order(conn: sa.Connection, report: InvariantReport, machine: str) -> None:
    rows = _rows(
        conn,
        "SELECT entity_id, version, event_id FROM transition_history WHERE machine = :m "
        "ORDER BY entity_id, version",
        m=machine,
    )
    last: dict[str, int] = {}
    bad = []
    for r in rows:
        if r.event_id is None:
            continue
        previous = last.get(r.entity_id)
        if previous is not None and int(r.event_id) <= previous:
            bad.append((r.entity_id, r.version, previous, int(r.event_id)))
        last[r.entity_id] = int(r.event_id)
    if bad:
        report.fail(f"{len(bad)} history rows out of submission order", bad)


def sequential_replay(
    accepted: Mapping[int, PlannedEvent], machine_path: Path | None = None
) -> dict[str, tuple[str, int]]:
    """Final ``(state, version)`` per entity when the accepted events run one by one, in order.

    A guard that raises (poison) leaves the entity unchanged, as a dead-lettered event does.
    """
    from pystator import StateMachine
    from pystator.fsm_core.errors import GuardEvaluationError
    from tests.support.fleet_app import bind

    machine = StateMachine.from_yaml(machine_path or FLEET_MACHINES / "fleet_cycle.yaml")
    bind(machine, action_sink=None)
    states: dict[str, tuple[str, int]] = {}
    for event_id in sorted(accepted):
        event = accepted[event_id]
        state, version = states.get(event.entity_id, (machine.get_initial_state(), 0))
        try:
            result = machine.process(state, event.trigger, dict(event.context))
        except GuardEvaluationError:  # the worker retries it, then dead-letters the event
            continue
        if result.success and result.target_state is not None:
            states[event.entity_id] = (result.target_state, version + 1)
    return states


def _check_replay(
    conn: sa.Connection,
    report: InvariantReport,
    accepted: Mapping[int, PlannedEvent],
    machine: str,
) -> None:
    expected = sequential_replay(accepted)
    rows = _rows(
        conn, "SELECT entity_id, state, version FROM entity_states WHERE machine = :m", m=machine
    )
    actual = {str(r.entity_id): (str(r.state), int(r.version)) for r in rows}
    wrong = [(e, actual.get(e), want) for e, want in expected.items() if actual.get(e) != want]
    wrong += [(e, got, None) for e, got in actual.items() if e not in expected]
    report.stats["entities"] = len(actual)
    if wrong:
        report.fail(f"{len(wrong)} entities differ from the sequential replay", wrong)


def _check_actions(conn: sa.Connection, report: InvariantReport, machine: str) -> None:
    outbox = _rows(
        conn, "SELECT id, status FROM action_outbox WHERE machine = :m ORDER BY id", m=machine
    )
    log = _rows(conn, "SELECT token, count(*) AS n FROM action_log GROUP BY token")
    ran = {str(r.token): int(r.n) for r in log}
    never = [int(r.id) for r in outbox if str(r.id) not in ran]
    if never:
        report.fail(f"{len(never)} outbox actions never ran", never)
    unknown = sorted(set(ran) - {str(r.id) for r in outbox})
    if unknown:
        report.fail(f"{len(unknown)} action runs carry a token with no outbox row", unknown)
    report.stats["actions"] = len(outbox)
    report.stats["action_runs"] = sum(ran.values())
    report.stats["action_duplicate_runs"] = sum(n - 1 for n in ran.values() if n > 1)
    applied_with_actions = _rows(
        conn,
        "SELECT count(*) AS n FROM transition_history WHERE machine = :m "
        "AND trigger IN ('next', 'reset')",
        m=machine,
    )[0].n
    if int(applied_with_actions) != len(outbox):
        report.fail(
            f"{applied_with_actions} applied next/reset transitions but {len(outbox)} outbox rows"
        )


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for v in values:
        out[v] += 1
    return dict(out)


@contextlib.contextmanager
def timed(label: str, sink: dict[str, float]) -> Iterator[None]:
    """Record the wall time of a block under ``label`` (for test reports, never assertions)."""
    start = time.monotonic()
    try:
        yield
    finally:
        sink[label] = time.monotonic() - start
