"""The API fuzzer: schemathesis 4 generating requests from our own OpenAPI against a real
``pystator api`` on PostgreSQL, with an admin key.

The CI test (``tests/api/test_api_fuzz.py``) runs it with a fixed seed, deterministic
generation and a bounded time; ``make fuzz`` (``python -m tests.support.fuzzing``) runs it
longer with a random seed and prints the counts per check. Before it starts, the database is
seeded with a small fleet (``tests/support/fuzz_seed.py``) whose ids the run's own
``schemathesis.toml`` offers to the fields that name them. Operations answering a live stream
(``text/event-stream``) are left out: a request to them does not end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import sqlalchemy as sa

from pystator.stores.sql import migrator
from tests.support.api_clients import JWT_SECRET, bearer, token
from tests.support.api_server import running_api
from tests.support.fuzz_seed import fuzz_config
from tests.support.fuzz_seed import seed as seed_fleet

#: What the fuzzer checks on every response.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
#: The kinds of failure the summary always counts (schemathesis' titles).
KINDS = (
    "Server error",
    "Undocumented status code",
    "Undocumented Content-Type",
    "Response violates schema",
)
#: schemathesis' warnings about operations its requests did not get through (JSON report keys).
WARNINGS = ("missing_test_data", "validation_mismatch", "low_valid_rate")
#: The seed of the CI run (any fixed value: the same requests every run).
CI_SEED = 28
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STREAM_MEDIA_TYPE = "text/event-stream"


@dataclass
class FuzzReport:
    """What one run found: failures per check (each a distinct failure schemathesis kept),
    the operations tested, the exit status and the tool's own output."""

    seed: int | None
    seconds: float
    failures: Counter[str] = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)
    operations: int = 0
    cases: int = 0
    #: Operations schemathesis warned about: every answer 404 (``missing_test_data``), mostly
    #: 400/422 (``validation_mismatch``), few accepted (``low_valid_rate``).
    warnings: dict[str, list[str]] = field(default_factory=dict)
    #: What the API did with the positive (schema-valid) cases, summed over operations and
    #: phases: ``accepted``, ``rejected`` (4xx but 404/409), ``unreachable`` (404), ``conflicts``.
    positive: Counter[str] = field(default_factory=Counter)
    seeded: dict[str, int] = field(default_factory=dict)
    exit_code: int = 0
    output: str = ""

    @property
    def clean(self) -> bool:
        """No failure of any check (and the tool found nothing else wrong)."""
        return not self.failures and self.exit_code == 0

    def summary(self) -> str:
        """One paragraph for people: the counts per check."""
        counts = ", ".join(f"{kind}: {self.failures.get(kind, 0)}" for kind in KINDS)
        others = {k: n for k, n in self.failures.items() if k not in KINDS}
        extra = f", other: {others}" if others else ""
        warned = ", ".join(f"{kind}: {len(self.warnings.get(kind, []))}" for kind in WARNINGS)
        return (
            f"seed {self.seed if self.seed is not None else 'random'}, {self.seconds:.0f} s, "
            f"{self.operations} operations, {self.cases} cases; failures: {counts}{extra}; "
            f"operations warned about: {warned}; positive cases: {dict(self.positive)}"
        )


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new PostgreSQL database at the newest schema on ``server_url``; dropped on exit."""
    name = f"pystator_fuzz_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
        migrator.upgrade(url)
        yield url
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def stream_paths(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """``(method, path)`` of the live streams: operations whose success is a
    ``text/event-stream`` (or whose path ends in ``/stream``)."""
    found = []
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            media = {
                m
                for status, response in operation.get("responses", {}).items()
                if status.startswith("2")
                for m in response.get("content", {})
            }
            if STREAM_MEDIA_TYPE in media or path.endswith("/stream"):
                found.append((method.upper(), path))
    return found


def _schemathesis() -> list[str]:
    script = Path(sys.executable).with_name("schemathesis")
    return [str(script)] if script.exists() else [sys.executable, "-m", "schemathesis.cli"]


def run_schemathesis(
    base: str,
    headers: dict[str, str],
    *,
    seconds: float,
    seed: int | None,
    work: Path,
    max_examples: int | None = None,
    config: Path | None = None,
) -> FuzzReport:
    """Run schemathesis against the API at ``base`` (with the ``schemathesis.toml`` at
    ``config``, if any) and read its JSON report."""
    spec = httpx.get(f"{base}/openapi.json", timeout=30).json()
    report_path = work / "schemathesis.json"
    command = [
        *_schemathesis(),
        *(["--config-file", str(config)] if config is not None else []),
        "run",
        f"{base}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-time",
        str(int(seconds)),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report_path),
        "--no-color",
        "--suppress-health-check",
        "all",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if seed is not None:
        command += ["--seed", str(seed), "--generation-deterministic"]
    else:
        command += ["--generation-database", "none"]
    if max_examples is not None:
        command += ["--max-examples", str(max_examples)]
    streams = sorted({path for _method, path in stream_paths(spec)})
    if streams:  # one regex: schemathesis keeps only the last of several --exclude-by options
        command += ["--exclude-path-regex", "^(" + "|".join(map(re.escape, streams)) + ")$"]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"}
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
    report = FuzzReport(
        seed=seed, seconds=seconds, exit_code=done.returncode, output=done.stdout + done.stderr
    )
    if report_path.exists():
        _read(json.loads(report_path.read_text()), report)
    return report


def _read(data: dict[str, Any], report: FuzzReport) -> None:
    """Fill ``report`` from schemathesis' JSON run report (``failures``: one entry per kind,
    with its code, title, count and operations; ``errors``: what could not be tested)."""
    report.operations = int(data.get("operations", {}).get("tested", 0) or 0)
    report.cases = int(data.get("test_cases", {}).get("generated", 0) or 0)
    warnings = data.get("warnings") or {}
    report.warnings = {kind: sorted(warnings.get(kind) or []) for kind in WARNINGS}
    for phases in (data.get("valid_rates") or {}).values():
        for rates in phases.values():
            report.positive.update({k: int(v) for k, v in rates.items() if isinstance(v, int)})
    for failure in data.get("failures") or []:
        title = str(failure.get("title") or failure.get("type") or "unknown")
        report.failures[title] += int(failure.get("count") or 1)
        operations = ", ".join(failure.get("operations") or [])
        report.details.append(f"{failure.get('code', '')} {title}: {operations}")
    for error in data.get("errors") or []:
        report.failures["error"] += 1
        report.details.append(f"error: {json.dumps(error)[:300]}")


def fuzz(
    *,
    seconds: float,
    seed: int | None,
    postgres_url: str | None = None,
    max_examples: int | None = None,
    keep: Path | None = None,
    seeded: bool = True,
) -> FuzzReport:
    """A whole run: a fresh database, a real server, a seeded fleet (unless ``seeded`` is
    false), schemathesis with an admin token."""
    server_url = postgres_url or os.environ.get("PYSTATOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    with fresh_database(server_url) as db_url, TemporaryDirectory() as tmp:
        work = keep or Path(tmp)
        # A JWT, not an API key: the fuzzer revokes keys (DELETE /api/v1/api-keys/{key_id})
        with running_api(work, database_url=db_url, PYSTATOR_API_JWT_SECRET=JWT_SECRET) as server:
            config = None
            counts: dict[str, int] = {}
            if seeded:
                made = seed_fleet(server.base, bearer(token("admin", "seeder")), db_url)
                counts = made.counts()
                config = work / "schemathesis.toml"
                config.write_text(fuzz_config(made))
            report = run_schemathesis(
                server.base,
                bearer(token("admin", "fuzzer")),
                seconds=seconds,
                seed=seed,
                work=work,
                max_examples=max_examples,
                config=config,
            )
            report.seeded = counts
            errors = [line for line in server.log_text().splitlines() if "api_unhandled" in line]
            report.details += [f"server log: {line[:300]}" for line in errors]
        return report


def main(argv: list[str] | None = None) -> int:
    """``make fuzz``: a longer run with a random seed; prints the counts, exits 1 on a finding."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed")
    parser.add_argument("--keep", type=Path, default=None, help="keep reports in this folder")
    parser.add_argument(
        "--no-seed", action="store_true", help="fuzz an empty database (no seeded fleet)"
    )
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    report = fuzz(seconds=args.seconds, seed=args.seed, keep=args.keep, seeded=not args.no_seed)
    print(report.output[-20000:])
    for line in report.details:
        print(line)
    if report.seeded:
        print("seeded:", ", ".join(f"{k} {n}" for k, n in report.seeded.items()))
    print(report.summary())
    return 0 if report.clean else 1


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "CHECKS",
    "CI_SEED",
    "WARNINGS",
    "FuzzReport",
    "fuzz",
    "main",
    "run_schemathesis",
    "stream_paths",
]
