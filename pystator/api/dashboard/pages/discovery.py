"""``/ui/discovery``: the machines discovery knows (observed, or active here), and
``/ui/discovery/{name}``: a candidate's diagram, each edge with its count and confidence, next to
the active machine's, with the observed edges the machine does not allow (unexpected, red) and
the edges it allows that nobody used (unused, dashed) marked, and the edge table. Operators build
a new candidate from the page (from the stored observations or the fleet's history)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from pystator.api.app_services import Services
from pystator.api.dashboard.pages.common import known_machines, write_audit
from pystator.api.dashboard.render import page, redirect
from pystator.api.dashboard.session import Csrf, User, require_role
from pystator.api.deps import ServicesDep
from pystator.fsm_core.errors import DiscoveryError
from pystator.fsm_core.machine import StateMachine
from pystator.services import discovery
from pystator.services.api_keys import Role
from pystator.services.discovery import (
    BuildScope,
    BuiltDiscoveryCandidate,
    EdgeDiff,
    InferenceThresholds,
)
from pystator.visualization.mermaid import front_matter, mermaid_text

router = APIRouter()

#: Edge colours of the diagrams.
UNEXPECTED_STYLE = "stroke:#d92d20,stroke-width:3px,color:#d92d20"
UNUSED_STYLE = "stroke:#f79009,stroke-width:2px,stroke-dasharray:6 4,color:#b54708"


@router.get("/discovery", response_class=HTMLResponse)
def discovery_index(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """Machines with observations or candidates, and the machines this process runs."""
    engine = services.discovery.engine
    names = sorted({*engine.observations.observed_machines(), *known_machines(services)})
    rows = [
        {
            "name": name,
            "latest": engine.latest_candidate(name),
            "active": services.machines.find(name) is not None,
        }
        for name in names
    ]
    return page(request, "discovery.html", {"rows": rows}, principal=user)


@router.get("/discovery/{name}", response_class=HTMLResponse)
def discovery_machine(
    name: str, request: Request, services: ServicesDep, user: User
) -> HTMLResponse:
    """A machine's candidate next to the active machine."""
    engine = services.discovery.engine
    wanted = request.query_params.get("version")
    version = int(wanted) if wanted and wanted.isdigit() else None
    candidate = engine.get_candidate(name, version)
    machine = services.machines.find(name)
    diff = None if candidate is None or machine is None else discovery.compare(candidate, machine)
    context: dict[str, Any] = {
        "name": name,
        "candidate": candidate,
        "machine": machine,
        "diff": diff,
        "versions": [c.version for c in engine.list_candidates(name)],
        "thresholds": engine.thresholds,
        "candidate_diagram": None if candidate is None else candidate_mermaid(candidate, diff),
        "active_diagram": None if machine is None else active_mermaid(machine, candidate, diff),
        "unexpected": set() if diff is None else {e.pair for e in diff.unexpected},
        "done": request.query_params.get("done"),
    }
    return page(request, "discovery_machine.html", context, principal=user)


@router.post("/discovery/{name}/build")
async def build(
    name: str, request: Request, services: ServicesDep, user: User, _csrf: Csrf
) -> Response:
    """Build a candidate (operators): from the stored observations or the fleet's history."""
    require_role(user, Role.OPERATOR)
    form = await request.form()
    scope = BuildScope(
        machine_name=name,
        source=str(form.get("source") or "observations"),
        thresholds=_thresholds(
            services, str(form.get("min_edge_count") or ""), str(form.get("min_confidence") or "")
        ),
    )
    candidate = await run_in_threadpool(_build, services, scope, user.name)
    write_audit(
        services,
        user,
        request,
        target=f"discovery:{name}:candidate:{candidate.version}",
        selection={"source": scope.source},
        affected=1,
    )
    return redirect(f"/discovery/{name}", version=candidate.version, done="built")


def _thresholds(services: Services, count: str, confidence: str) -> InferenceThresholds:
    defaults = services.discovery.engine.thresholds
    try:
        return InferenceThresholds(
            min_edge_count=int(count) if count.strip() else defaults.min_edge_count,
            min_confidence=float(confidence) if confidence.strip() else defaults.min_confidence,
        )
    except ValueError:
        raise DiscoveryError("min_edge_count is a whole number, min_confidence a number") from None


def _build(services: Services, scope: BuildScope, by: str) -> BuiltDiscoveryCandidate:
    machine = services.machines.find(scope.machine_name)
    return discovery.build(
        services.discovery.engine,
        scope,
        fleet_url=services.settings.database_url,
        initial_state=None if machine is None else machine.get_initial_state(),
        created_by=by,
    )


# --- diagrams -----------------------------------------------------------------------------------


def _nodes(
    names: list[str], initial: str | None, terminal: set[str]
) -> tuple[dict[str, str], list[str]]:
    """Ids ``n0, n1, …`` (never a Mermaid keyword) and the node lines for ``names``."""
    ids = {state: f"n{i}" for i, state in enumerate(names)}
    lines = []
    for state, ident in ids.items():
        label = mermaid_text(state)
        if state == initial:
            lines.append(f'  {ident}(["{label}"])')
        elif state in terminal:
            lines.append(f'  {ident}[["{label}"]]')
        else:
            lines.append(f'  {ident}["{label}"]')
    return ids, lines


def candidate_mermaid(candidate: BuiltDiscoveryCandidate, diff: EdgeDiff | None) -> str:
    """The candidate as a flowchart: each kept edge labelled ``count · confidence``, the ones
    the active machine does not allow in red."""
    kept = candidate.kept_edges
    names = list(dict.fromkeys(s["name"] for s in candidate.config.get("states", ())))
    ids, lines = _nodes(names, candidate.initial_state, set(candidate.terminal_states))
    unexpected = set() if diff is None else {e.pair for e in diff.unexpected}
    out = [*front_matter(f"candidate v{candidate.version}"), "flowchart LR", *lines]
    styled = []
    for index, edge in enumerate(kept):
        label = f"{edge.count:,} · {edge.confidence:.0%}"
        out.append(
            f'  {ids[edge.source_state]} -->|"{mermaid_text(label)}"| {ids[edge.destination_state]}'
        )
        if edge.pair in unexpected:
            styled.append(index)
    if styled:
        out.append(f"  linkStyle {','.join(map(str, styled))} {UNEXPECTED_STYLE}")
    return "\n".join(out)


def active_mermaid(
    machine: StateMachine, candidate: BuiltDiscoveryCandidate | None, diff: EdgeDiff | None
) -> str:
    """The active machine as a flowchart of its allowed edges: each labelled with how often it
    was observed, the never observed ones dashed."""
    allowed = sorted(discovery.allowed_edges(machine))
    names = [s.name for s in machine.definition.states]
    terminal = {s.name for s in machine.definition.states if s.kind.value == "terminal"}
    ids, lines = _nodes(names, machine.get_initial_state(), terminal)
    seen = {} if candidate is None else {e.pair: e.count for e in candidate.edges}
    unused = set() if diff is None else set(diff.unused)
    version = "" if machine.registry_version is None else f" v{machine.registry_version}"
    out = [*front_matter(f"active{version}"), "flowchart LR", *lines]
    styled = []
    for index, (source, dest) in enumerate(allowed):
        if (source, dest) in unused:
            out.append(f'  {ids[source]} -.->|"unused"| {ids[dest]}')
            styled.append(index)
        elif (source, dest) in seen:
            out.append(f'  {ids[source]} -->|"{seen[(source, dest)]:,}"| {ids[dest]}')
        else:
            out.append(f"  {ids[source]} --> {ids[dest]}")
    if styled:
        out.append(f"  linkStyle {','.join(map(str, styled))} {UNUSED_STYLE}")
    return "\n".join(out)


__all__ = ["active_mermaid", "candidate_mermaid", "router"]
