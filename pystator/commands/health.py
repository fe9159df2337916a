"""``pystator health``: exit 0 when this host's worker is alive and can work, 1 when not.

Usable as a Kubernetes exec probe: ``--liveness`` (heartbeats: progress, stalls, dead duties),
``--readiness`` (database and broker reachable); both when neither is given.
"""

from __future__ import annotations

import argparse
import json

from pystator.config.settings import load_settings
from pystator.fleet.composition import command_engine
from pystator.services.health import HealthReport, check_liveness, check_readiness

EXIT_UNHEALTHY = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``health`` command."""
    health = sub.add_parser("health", help="check this host's worker (exit 0 healthy, 1 not)")
    kind = health.add_mutually_exclusive_group()
    kind.add_argument("--liveness", action="store_true", help="heartbeats, progress and stalls")
    kind.add_argument("--readiness", action="store_true", help="database and broker reachable")
    health.add_argument(
        "--stall-seconds",
        type=float,
        default=None,
        help="no progress for this long is a failure (default PYSTATOR_STALL_SECONDS, 60)",
    )
    health.add_argument("--host", default=None, help="whose workers (default: this host)")
    health.add_argument("--json", action="store_true", help="print the report as JSON")
    health.set_defaults(func=run_health)


def run_health(args: argparse.Namespace) -> int:
    """Run the checks asked for and print their problems."""
    settings = load_settings()
    reports: list[HealthReport] = []
    if not args.liveness:
        reports.append(check_readiness(settings))
    if not args.readiness and all(r.healthy for r in reports):
        with command_engine(settings) as engine:
            reports.append(
                check_liveness(
                    engine,
                    host=args.host,
                    stall_seconds=args.stall_seconds or settings.stall_seconds,
                    heartbeat_seconds=settings.heartbeat_seconds,
                )
            )
    healthy = all(r.healthy for r in reports)
    if args.json:
        print(json.dumps({"healthy": healthy, "checks": [r.to_dict() for r in reports]}))
    else:
        for report in reports:
            verdict = "ok" if report.healthy else "FAILED"
            print(f"{report.check}: {verdict}")
            for problem in report.problems:
                print(f"  - {problem}")
    return 0 if healthy else EXIT_UNHEALTHY
