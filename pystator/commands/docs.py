"""``pystator docs``: build the documentation site when needed and serve it, offline."""

from __future__ import annotations

import argparse
import sys

from pystator.manual import DEFAULT_PORT, ManualError, ensure_built, find_sources, serve


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``docs`` to the command line."""
    p = sub.add_parser(
        "docs", help="build the documentation site when needed and serve it (no network)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    p.add_argument("--build-only", action="store_true", help="build if needed, then exit")
    p.add_argument("--rebuild", action="store_true", help="build even when the site is fresh")
    p.set_defaults(func=cmd_docs)


def cmd_docs(args: argparse.Namespace) -> int:
    """Build (when missing or stale) and serve until interrupted."""
    sources = find_sources()
    if sources is None:
        print(
            "pystator docs: no documentation sources here (mkdocs.yml and docs/): run it in "
            "a checkout of pystator, installed with pip install -e '.[api]'",
            file=sys.stderr,
        )
        return 2
    try:
        site = ensure_built(sources, rebuild=args.rebuild)
    except ManualError as exc:
        print(f"pystator docs: {exc}", file=sys.stderr)
        return 1
    if args.build_only:
        print(f"documentation site: {site}")
        return 0
    server = serve(site, host=args.host, port=args.port)
    print(f"serving the documentation on http://{args.host}:{server.server_port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
