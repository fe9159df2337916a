"""``/ui/machines``: the machines this deployment knows (stored versions in the registry, and
definitions from files); ``/ui/machines/{name}``: its versions, a diagram (states, transitions,
hierarchy and regions) with the live number of entities per state, and a playground that
validates a definition or computes a transition (nothing is stored, no action runs)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from pystator.api.app_services import Services
from pystator.api.dashboard.render import page
from pystator.api.dashboard.session import Csrf, User
from pystator.api.deps import ServicesDep
from pystator.fsm_core.errors import FSMError, MachineValidationError, NotFoundError
from pystator.fsm_core.machine import StateMachine
from pystator.fsm_core.summary import result_to_dict, summarize
from pystator.fsm_core.yaml_loader import dump_yaml, parse_yaml
from pystator.registry import versions
from pystator.services import lookups, shadow
from pystator.visualization import to_mermaid

router = APIRouter()

#: Largest definition or context the playground accepts (characters).
MAX_PLAYGROUND_TEXT = 256 * 1024


@router.get("/machines", response_class=HTMLResponse)
def machines(request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """Stored and file machines."""
    stored = {r.name: r for r in versions.list_machines(services.engine, include_retired=True)}
    names = sorted({*services.machines.names(), *stored})
    rows = [
        {
            "name": name,
            "record": stored.get(name),
            "source": "registry" if name in stored else "file",
            "states": _state_total(services, name),
        }
        for name in names
    ]
    return page(request, "machines.html", {"rows": rows}, principal=user)


def _state_total(services: Services, name: str) -> int | None:
    machine = services.machines.find(name)
    return None if machine is None else len(summarize(machine).states)


def _machine_and_versions(
    services: Services, name: str, version: int | None
) -> tuple[StateMachine, Any]:
    try:
        detail = versions.show_machine(services.engine, name, version=version)
    except NotFoundError:
        if version is not None:
            raise
        machine = services.machines.find(name)
        if machine is None:
            raise
        return machine, None
    return detail.machine(services.machines.bind_to), detail


def diagram(machine: StateMachine, counts: dict[str, int]) -> str:
    """The Mermaid diagram of ``machine``, each state labelled with its entity count."""
    labels = {state: f"{state} ({counts.get(state, 0):,})" for state in counts}
    return to_mermaid(machine, labels=labels)


@router.get("/machines/{name}", response_class=HTMLResponse)
def machine_page(name: str, request: Request, services: ServicesDep, user: User) -> HTMLResponse:
    """One machine: versions, diagram with live counts, playground."""
    version = request.query_params.get("version")
    machine, detail = _machine_and_versions(
        services, name, int(version) if version and version.isdigit() else None
    )
    counts = lookups.state_counts(services.engine, name)
    summary = summarize(machine)
    shadow_view = shadow.find_shadow(services.engine, name)
    return page(
        request,
        "machine.html",
        {
            "name": name,
            "machine": machine,
            "detail": detail,
            "summary": summary,
            "counts": counts,
            "entities": sum(counts.values()),
            "mermaid": diagram(machine, {s: counts.get(s, 0) for s in summary.states}),
            "definition": (dump_yaml(dict(detail.version.definition)) if detail else ""),
            "playground": None,
            "shadow": shadow_view,
            "shadow_example": (
                shadow.example_timeline(services.engine, name, shadow_view) if shadow_view else None
            ),
            "done": request.query_params.get("done"),
        },
        principal=user,
    )


@router.post("/machines/{name}/playground", response_class=HTMLResponse)
async def playground(
    name: str, request: Request, services: ServicesDep, user: User, _csrf: Csrf
) -> HTMLResponse:
    """Validate a pasted definition and compute one transition of it, or of this machine when
    none is pasted (viewers may: nothing changes). The work runs in a worker thread: a large
    paste never holds up the event loop."""
    form = await request.form()
    outcome: dict[str, Any] = {
        "definition": str(form.get("definition") or ""),
        "state": str(form.get("state") or "").strip(),
        "trigger": str(form.get("trigger") or "").strip(),
        "context": str(form.get("context") or "").strip() or "{}",
    }
    await run_in_threadpool(_play, services, name, outcome)
    return page(request, "_playground.html", {"playground": outcome, "name": name}, principal=user)


def _context(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the context nests too deeply") from None


def _play(services: Services, name: str, outcome: dict[str, Any]) -> None:
    """Fill ``outcome`` (the form's fields) with a summary and a result, or the problems."""
    text, context_text = outcome["definition"], outcome["context"]
    try:
        if len(text) > MAX_PLAYGROUND_TEXT or len(context_text) > MAX_PLAYGROUND_TEXT:
            raise ValueError(f"at most {MAX_PLAYGROUND_TEXT:,} characters")
        if text.strip():
            config = parse_yaml(text, source="<dashboard>")
            if not isinstance(config, dict):
                raise ValueError("the definition must be a YAML or JSON mapping")
            machine = StateMachine.from_dict(versions.canonical(config), source="<dashboard>")
        else:
            machine = services.machines.get(name)
        outcome["summary"] = summarize(machine).to_dict()
        if outcome["state"] and outcome["trigger"]:
            context = _context(context_text)
            if not isinstance(context, dict):
                raise ValueError("the context must be a JSON object")
            result = machine.process(outcome["state"], outcome["trigger"], context)
            outcome["result"] = result_to_dict(result)
    except MachineValidationError as exc:
        outcome["problems"] = [str(p) for p in exc.problems]
    except (FSMError, ValueError) as exc:
        outcome["problems"] = [str(exc)]


__all__ = ["diagram", "router"]
