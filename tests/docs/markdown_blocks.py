"""The fenced code blocks of a Markdown page, with the markers that tell the docs tests what to do.

Markers are HTML comments on the line before a block (the site's hook shows them to readers):

* ``<!-- not run: REASON -->``: the tests skip the block; the page says so, with the reason;
* ``<!-- file: NAME -->``: the tests write the block to ``NAME`` in the page's working directory
  (a machine definition, a module) instead of running it; the page shows the file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>[^`]*)$")
_MARKER = re.compile(r"^[ \t]*<!-- (?P<kind>not run|file): (?P<value>.+?) -->[ \t]*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    """One fenced block: its language, its text (dedented) and where it starts on the page."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None = None
    file: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def read_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` in order (nested fences inside a block are its text)."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        lang = match["info"].strip().split(" ")[0].lower()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        if j == len(lines):
            raise ValueError(f"{page}:{i + 1}: code block is never closed")
        marker = _marker_before(lines, i)
        blocks.append(
            Block(
                page=page,
                line=i + 1,
                lang=lang,
                code="\n".join(body) + "\n",
                not_run=marker[1] if marker and marker[0] == "not run" else None,
                file=marker[1] if marker and marker[0] == "file" else None,
            )
        )
        i = j + 1
    return blocks


def _marker_before(lines: list[str], fence_index: int) -> tuple[str, str] | None:
    k = fence_index - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    if k < 0:
        return None
    match = _MARKER.match(lines[k])
    return (match["kind"], match["value"]) if match else None
