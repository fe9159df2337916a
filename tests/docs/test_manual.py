"""``pystator docs`` and ``/manual``: build when stale, serve offline, say how when not built."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from pystator.api.manual import ManualFiles
from pystator.manual import ManualSources, find_sources, is_stale
from tests.support.ports import free_port, port_open
from tests.support.waiting import wait_until
from tests.support.worker_processes import env_for, pystator_cmd

MINIMAL_CONFIG = "site_name: tiny\ntheme: {name: mkdocs}\n"


def _checkout(root: Path) -> ManualSources:
    (root / "docs").mkdir(parents=True)
    (root / "mkdocs.yml").write_text(MINIMAL_CONFIG)
    (root / "docs" / "index.md").write_text("# Tiny\n\nHello from the manual.\n")
    return ManualSources(root=root)


def test_sources_are_found_from_a_subfolder_of_the_checkout(tmp_path: Path) -> None:
    sources = _checkout(tmp_path / "repo")
    nested = tmp_path / "repo" / "docs"
    assert find_sources(nested) == sources


def test_pystator_docs_builds_a_stale_site_and_serves_it(tmp_path: Path) -> None:
    sources = _checkout(tmp_path)
    assert is_stale(sources)
    port = free_port()
    server = subprocess.Popen(
        [*pystator_cmd(), "docs", "--port", str(port)],
        cwd=tmp_path,
        env=env_for({}, clean=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: port_open(port), timeout=120, message="pystator docs listening")
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200
        assert "Hello from the manual." in page.text
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert not is_stale(sources)
    later = time.time() + 5  # a source edited after the build makes the site stale again
    os.utime(tmp_path / "docs" / "index.md", (later, later))
    assert is_stale(sources)


def test_a_broken_link_fails_the_build_with_mkdocs_output(tmp_path: Path) -> None:
    _checkout(tmp_path)
    (tmp_path / "docs" / "index.md").write_text("# Tiny\n\n[gone](missing.md)\n")
    done = subprocess.run(
        [*pystator_cmd(), "docs", "--build-only"],
        cwd=tmp_path,
        env=env_for({}, clean=True),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "missing.md" in done.stderr


def test_manual_says_how_to_build_it_then_serves_it(tmp_path: Path) -> None:
    sources = ManualSources(root=tmp_path)
    app = Starlette(routes=[Mount("/manual", ManualFiles(sources))])
    with TestClient(app) as client:
        missing = client.get("/manual/")
        assert missing.status_code == 404
        assert "pystator docs --build-only" in missing.text
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "index.html").write_text("<h1>the manual</h1>")
        built = client.get("/manual/")
        assert built.status_code == 200
        assert "the manual" in built.text
