"""The dashboard's vendored browser libraries are the files their record says they are."""

from __future__ import annotations

import hashlib
import re

from pystator.api.dashboard.render import STATIC, TEMPLATES

VENDOR = STATIC / "vendor"
RECORD = VENDOR / "VENDORED.md"
ROW = re.compile(
    r"^\| `(?P<file>[^`]+)` \| `(?P<package>[^`]+)` \| (?P<version>[^ |]+) \| (?P<licence>[^|]+) \| `(?P<sha>[0-9a-f]{64})` \|$"
)


def recorded() -> dict[str, dict[str, str]]:
    rows = {}
    for line in RECORD.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match["file"]] = match.groupdict()
    return rows


def test_every_vendored_file_is_recorded_with_its_checksum_and_licence() -> None:
    rows = recorded()
    shipped = {p.name for p in VENDOR.iterdir() if p.suffix in (".js", ".css")}
    assert shipped == set(rows)
    for name, row in rows.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == row["sha"], name
        assert row["version"] in name
        licence_file = re.search(r"`([^`]+\.LICENSE)`", row["licence"])
        assert licence_file and (VENDOR / licence_file[1]).is_file(), name


def test_templates_load_only_shipped_files() -> None:
    for template in TEMPLATES.glob("*.html"):
        for path in re.findall(
            r'(?:src|href)="\{\{ prefix \}\}/static/([^"]+)"', template.read_text()
        ):
            assert (STATIC / path).is_file(), (template.name, path)
