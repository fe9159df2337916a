"""The README is short, speaks for itself, and every link in it resolves."""

from __future__ import annotations

import re

from tests.support.worker_processes import ROOT

README = ROOT / "README.md"
MAX_LINES = 150
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.M)


def _slug(heading: str) -> str:
    """The anchor MkDocs (and GitHub) give a heading: lower case, punctuation dropped."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return re.sub(r"[ ]+", "-", text)


def test_the_readme_is_at_most_150_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_readme_does_not_speak_of_the_seed() -> None:
    assert "seed" not in README.read_text().lower()


def test_every_link_in_the_readme_resolves() -> None:
    problems = []
    for target in _LINK.findall(README.read_text()):
        if target.startswith(("http://127.0.0.1", "http://localhost")):
            continue  # the local servers the README says to start
        assert not target.startswith(("http:", "https:")), f"external link {target}"
        path, _, anchor = target.partition("#")
        file = (README.parent / path).resolve()
        if not file.exists():
            problems.append(f"{target}: no such file")
        elif anchor and anchor not in {_slug(h) for h in _HEADING.findall(file.read_text())}:
            problems.append(f"{target}: no heading #{anchor}")
    assert problems == []


_REPO_PATH = re.compile(r"\b((?:tests|bench|examples)/[\w/.-]+\.(?:py|yaml|yml|json))")


def test_every_repository_file_the_docs_name_exists() -> None:
    """A page that says where something is tested or measured names a file that is there
    (the test folders were reorganised once and the pages kept the old paths)."""
    pages = [README, *sorted((ROOT / "docs").rglob("*.md"))]
    missing = {
        f"{page.relative_to(ROOT)}: {path}"
        for page in pages
        for path in _REPO_PATH.findall(page.read_text())
        if not (ROOT / path).exists()
    }
    assert sorted(missing) == []
