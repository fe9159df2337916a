"""``pystator prune [--dry-run]``: one retention pass, for operators and cron jobs.

A thin caller of :func:`pystator.fleet.retention.prune` (the function the workers' pruner duty
runs): it prints the rows removed per table and outcome, or with ``--dry-run`` how many would be.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from pystator.config.settings import load_settings
from pystator.fleet.composition import dispose, settings_engine
from pystator.fleet.retention import PruneReport, RetentionPolicy, prune

#: Exit status when another process holds the pruning lock (nothing was done).
EXIT_BUSY = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``prune`` command."""
    parser = sub.add_parser(
        "prune", help="delete rows past their retention window (PYSTATOR_RETENTION_*)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be removed, remove nothing"
    )
    parser.add_argument("--url", help="database URL (default: PYSTATOR_DATABASE_URL)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop after this long (default: until every table is pruned)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run_prune)


def run_prune(args: argparse.Namespace) -> int:
    """Run one pass and print its report; exit :data:`EXIT_BUSY` when another process prunes."""
    settings = load_settings()
    if args.url:
        settings = replace(settings, database_url=args.url)
    engine = settings_engine(settings, 2)
    try:
        report = prune(
            engine,
            RetentionPolicy.from_settings(settings),
            dry_run=args.dry_run,
            max_seconds=args.max_seconds,
        )
    finally:
        dispose(engine)
    if args.json:
        print(json.dumps(_as_dict(report), indent=2))
    else:
        print(_as_text(report))
    return EXIT_BUSY if report.skipped else 0


def _as_dict(report: PruneReport) -> dict[str, object]:
    return {
        "dry_run": report.dry_run,
        "skipped": report.skipped,
        "finished": report.finished,
        "seconds": round(report.seconds, 3),
        "removed": report.removed,
        "total": report.total,
        "kept_forever": report.kept_forever,
        "dropped_partitions": report.dropped_partitions,
        "created_partitions": report.created_partitions,
    }


def _as_text(report: PruneReport) -> str:
    if report.skipped:
        return "another process is pruning (the retention lock is held): nothing done"
    verb = "would remove" if report.dry_run else "removed"
    width = max([len(name) for name in report.removed] + [len("total")])
    lines = [f"{'table.outcome':<{width}}  {verb}"]
    lines += [f"{name:<{width}}  {count:>{len(verb)}}" for name, count in report.removed.items()]
    lines.append(f"{'total':<{width}}  {report.total:>{len(verb)}}")
    if report.kept_forever:
        lines.append("kept forever (window 0): " + ", ".join(report.kept_forever))
    if report.dropped_partitions:
        dropped = "would drop" if report.dry_run else "dropped"
        lines.append(f"{dropped} history partitions: " + ", ".join(report.dropped_partitions))
    if report.created_partitions:
        lines.append("created history partitions: " + ", ".join(report.created_partitions))
    if not report.finished:
        lines.append("stopped early (--max-seconds): run again to continue")
    lines.append(f"({report.seconds:.2f}s)")
    return "\n".join(lines)
