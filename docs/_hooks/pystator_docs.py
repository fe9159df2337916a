"""MkDocs hooks of the pystator site (``hooks:`` in mkdocs.yml).

* ``<!-- not run: REASON -->`` before a code block (the docs tests skip that block) becomes a
  visible line saying so, and ``<!-- file: NAME -->`` (the tests write the block to NAME)
  becomes a caption naming the file: what the tests do is what the reader sees.
* ``<!-- benchmarks -->`` on the Benchmarks page is replaced by the records in
  ``bench/results/`` (rendered by ``bench/report.py``): no number on that page is typed by hand.
* ``<!-- definition-limits -->`` becomes the table of ``pystator/fsm_core/limits.py``: each
  constant with its value and its ``#:`` comment, so the page cannot drift from the code.
* The dashboard's vendored Mermaid is copied into the site, so diagrams render with no network.
* Sphinx roles in docstrings (``:class:`~pystator.X```) are shown as plain code.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
MERMAID_DIR = ROOT / "pystator" / "api" / "dashboard" / "static" / "vendor"
MERMAID_DEST = "assets/vendor/mermaid.min.js"
BENCH_MARKER = "<!-- benchmarks -->"
LIMITS_MARKER = "<!-- definition-limits -->"
LIMITS_FILE = ROOT / "pystator" / "fsm_core" / "limits.py"

_NOT_RUN = re.compile(r"^(?P<indent>[ \t]*)<!-- not run: (?P<reason>.+?) -->[ \t]*$", re.M)
_FILE = re.compile(r"^(?P<indent>[ \t]*)<!-- file: (?P<name>[^ ]+) -->[ \t]*$", re.M)
_LIMIT = re.compile(r"^#: (?P<doc>(?:.+\n#: )*.+)\n(?P<name>MAX_\w+) = (?P<value>.+)$", re.M)
_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|data|mod|exc|obj):<code>(~?)([\w.]+)</code>")


def _bench_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pystator_bench_report", ROOT / "bench/report.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("bench/report.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def limits_table() -> str:
    """The definition limits as a markdown table, read from ``fsm_core/limits.py``'s source."""
    namespace: dict[str, Any] = {}
    source = LIMITS_FILE.read_text(encoding="utf-8")
    exec(compile(source, str(LIMITS_FILE), "exec"), namespace)
    rows = ["| limit | value | what it bounds |", "|---|---|---|"]
    for match in _LIMIT.finditer(source):
        value = namespace[match["name"]]
        doc = " ".join(line.removeprefix("#: ") for line in match["doc"].splitlines())
        rows.append(f"| `{match['name']}` | {value:,} | {doc} |")
    if len(rows) == 2:
        raise RuntimeError(f"no limits found in {LIMITS_FILE}")
    return "\n".join(rows) + "\n"


def on_config(config: Any) -> Any:
    """Load the vendored Mermaid before Material's bundle looks for it (it then skips its CDN)."""
    if MERMAID_DEST not in config.extra_javascript:
        config.extra_javascript.insert(0, MERMAID_DEST)
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add the dashboard's vendored Mermaid to the site."""
    vendored = sorted(MERMAID_DIR.glob("mermaid-*.min.js"))
    if len(vendored) != 1:
        raise RuntimeError(f"expected one vendored mermaid-*.min.js in {MERMAID_DIR}")
    files.append(File.generated(config, MERMAID_DEST, abs_src_path=str(vendored[0])))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Show the docs tests' markers; fill in the limits table and the Benchmarks page."""
    markdown = _NOT_RUN.sub(
        lambda m: f"{m['indent']}*Not run by the docs tests: {m['reason']}*\n", markdown
    )
    markdown = _FILE.sub(lambda m: f"{m['indent']}*File `{m['name']}`:*\n", markdown)
    if LIMITS_MARKER in markdown:
        markdown = markdown.replace(LIMITS_MARKER, limits_table())
    if BENCH_MARKER in markdown:
        report = _bench_report()
        body = report.render_page(report.load_records())
        markdown = markdown.replace(BENCH_MARKER, body)
    return markdown


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Docstrings use Sphinx roles; show ``:class:`~a.b.C``` as ``C`` in code."""
    return _ROLE.sub(lambda m: f"<code>{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}</code>", html)
