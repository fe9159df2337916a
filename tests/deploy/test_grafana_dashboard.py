"""The Grafana dashboard in the repository uses only metrics pystator exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from pystator.fleet.metrics import PrometheusObserver
from pystator.services.gauges import FleetCollector

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "pystator-fleet.json"
METRIC = re.compile(r"\b(pystator_[a-z_]+)")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exported() -> set[str]:
    registry = CollectorRegistry()
    PrometheusObserver(registry)
    names = {metric.name for metric in registry.collect()}
    names |= {name for name in FleetCollector.__doc__.split("``") if name.startswith("pystator_")}
    return names


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_every_query_names_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {base(name) for query in queries for name in METRIC.findall(query)}
    assert used, "the dashboard queries nothing"
    assert used <= exported(), sorted(used - exported())


def test_panels_do_not_overlap_and_have_unique_ids() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for panel in panels:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))
