"""Find, build and serve the documentation site (see :mod:`pystator.manual`)."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pystator.fsm_core.errors import ConfigurationError

#: Where ``pystator docs`` listens by default (the API has 8000).
DEFAULT_PORT = 8001
#: Written into the site after a successful build; its time is the build's.
STAMP = ".pystator-build"
#: The sources whose change makes a built site stale, relative to the checkout.
INPUTS = ("mkdocs.yml", "docs", "bench/results", "bench/report.py", "pystator")
BUILD_TIMEOUT_SECONDS = 600


class ManualError(ConfigurationError):
    """The documentation site cannot be found or built."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ManualSources:
    """A checkout's documentation sources and where its site is built."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "mkdocs.yml"

    @property
    def site_dir(self) -> Path:
        return self.root / "site"


def find_sources(start: Path | None = None) -> ManualSources | None:
    """The checkout holding ``mkdocs.yml`` and ``docs/``: ``start`` (default: the working
    directory) or one of its parents, else the checkout this package was installed from."""
    here = (start or Path.cwd()).resolve()
    package_checkout = Path(__file__).resolve().parents[2]
    for candidate in (here, *here.parents, package_checkout):
        if (candidate / "mkdocs.yml").is_file() and (candidate / "docs").is_dir():
            return ManualSources(root=candidate)
    return None


def _input_files(sources: ManualSources) -> Iterator[Path]:
    for name in INPUTS:
        path = sources.root / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from (p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def is_stale(sources: ManualSources) -> bool:
    """True when the site was never built, or a source changed after its last build."""
    stamp = sources.site_dir / STAMP
    if not stamp.is_file():
        return True
    built = stamp.stat().st_mtime
    return any(path.stat().st_mtime > built for path in _input_files(sources))


def build(sources: ManualSources) -> Path:
    """Build the site strictly (a broken link fails); returns the site folder."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
    ]  # no --quiet: it hides warnings from --strict
    command += ["--config-file", str(sources.config), "--site-dir", str(sources.site_dir)]
    try:
        done = subprocess.run(
            command,
            cwd=sources.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ManualError(f"the documentation build did not run: {exc}") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-4000:]
        raise ManualError(f"the documentation build failed (mkdocs build --strict):\n{output}")
    (sources.site_dir / STAMP).write_text("built by pystator docs\n")
    return sources.site_dir


def ensure_built(sources: ManualSources, *, rebuild: bool = False) -> Path:
    """The site folder, built first when it is missing or stale (or ``rebuild``)."""
    if rebuild or is_stale(sources):
        return build(sources)
    return sources.site_dir


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged (the terminal stays readable)."""


def serve(
    site_dir: Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> http.server.ThreadingHTTPServer:
    """A file server for ``site_dir`` (not started: call ``serve_forever``)."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    return http.server.ThreadingHTTPServer((host, port), handler)
