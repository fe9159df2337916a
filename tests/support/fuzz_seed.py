"""What the API fuzzer finds in its database before it starts: a small, realistic fleet.

Without it every id a request names is invented and almost every route that reads or changes
one thing answers 404 before any real work. :func:`seed` builds, through the public HTTP API
and the fleet's own runtime (no SQL): two machines published from ``examples/`` (plus a copy
kept for the routes that retire or delete), entities of both in several states with history,
pending, completed, rejected and dead events, dead actions, webhooks, an API key, discovery
observations, a candidate, drafts and a shadow. :func:`fuzz_config` turns what it made into a
``schemathesis.toml`` for that run only: dictionaries of the real ids, bound to the path, query
and body fields that name them, mixed with generated values at :data:`PROBABILITY` (the
schema-derived values still test the door).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from pystator.fleet.runtime import Runtime
from pystator.fsm_core.actions import ActionRegistry
from pystator.fsm_core.guards import GuardRegistry
from tests.support.api_clients import settings_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: The worker demo's machine: a guard (``exchange_ok``) and actions (``notify``, ``record_fill``).
FLEET_MACHINE = "fleet_order"
#: The quick-start machine: no guard, no action.
ORDER_MACHINE = "order_management"
#: A copy of the quick-start machine, the only one the retiring and deleting routes name.
SPARE_MACHINE = "order_spare"
#: Entity ids that exist under both machines (any pairing of the two dictionaries is real).
ENTITY_IDS = ("order-1", "order-2", "order-3", "order-4", "order-5")
#: Entities only the purging and archiving routes name (they delete what they name).
SPARE_ENTITY_IDS = ("spare-1", "spare-2", "spare-3")
#: How often a bound field takes a real value instead of a generated one.
PROBABILITY = 0.5


@dataclass
class Seeded:
    """The ids :func:`seed` made, by kind."""

    machines: list[str] = field(default_factory=list)
    spare_machines: list[str] = field(default_factory=list)
    entity_ids: list[str] = field(default_factory=list)
    spare_entity_ids: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    action_ids: list[int] = field(default_factory=list)
    webhook_ids: list[int] = field(default_factory=list)
    spare_webhook_ids: list[int] = field(default_factory=list)
    key_ids: list[int] = field(default_factory=list)
    draft_ids: list[int] = field(default_factory=list)
    spare_draft_ids: list[int] = field(default_factory=list)
    candidate_versions: list[int] = field(default_factory=list)
    idempotency_keys: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    #: Moments the door accepts as ``fires_at`` (from 1970 up to ten years ahead): a random
    #: date-time of the schema mostly is not.
    moments: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many of each kind (for the run's summary)."""
        return {name: len(values) for name, values in vars(self).items()}


class Seeder:
    """Requests to the API under test, refusing any answer but the expected one."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def call(self, method: str, path: str, expect: int | tuple[int, ...], **kw: Any) -> Any:
        response = self.client.request(method, path, **kw)
        wanted = (expect,) if isinstance(expect, int) else expect
        if response.status_code not in wanted:
            raise RuntimeError(
                f"seeding: {method} {path} answered {response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None


def _definition(name: str) -> str:
    return (EXAMPLES / name).read_text()


def _renamed(text: str, machine_name: str) -> dict[str, Any]:
    config = yaml.safe_load(text)
    config["meta"]["machine_name"] = machine_name
    return dict(config)


def publish_machines(api: Seeder, seeded: Seeded) -> None:
    """The worker demo's machine and the quick-start one, from their files; a renamed copy."""
    yaml_body = {"headers": {"Content-Type": "application/yaml"}}
    api.call("POST", "/api/v1/machines", 201, content=_definition("fleet_demo.yaml"), **yaml_body)
    api.call("POST", "/api/v1/machines", 201, content=_definition("order_fsm.yaml"), **yaml_body)
    spare = _renamed(_definition("order_fsm.yaml"), SPARE_MACHINE)
    api.call("POST", "/api/v1/machines", 201, json={"config": spare})
    seeded.machines += [FLEET_MACHINE, ORDER_MACHINE]
    seeded.spare_machines.append(SPARE_MACHINE)
    seeded.triggers += ["exchange_ack", "fill", "complete", "cancel"]
    seeded.states += ["PENDING", "OPEN", "PARTIAL", "FILLED", "CANCELLED"]


def create_entities(api: Seeder, seeded: Seeded) -> None:
    """Every id under both machines, moved on synchronously so that they differ in state and
    have history; the spare ones under the quick-start machine."""
    for machine in (FLEET_MACHINE, ORDER_MACHINE):
        for number, entity_id in enumerate(ENTITY_IDS):
            body = {"machine_name": machine, "context": {"customer": f"c{number}", "qty": number}}
            api.call("POST", f"/api/v1/entities/{entity_id}/create", 201, json=body)
    for entity_id in ENTITY_IDS[:3]:
        body = {"machine_name": ORDER_MACHINE, "trigger": "exchange_ack", "context": {"ok": True}}
        api.call("POST", f"/api/v1/entities/{entity_id}/events", 200, json=body)
    body = {"machine_name": ORDER_MACHINE, "trigger": "fill", "context": {"filled": 10}}
    api.call("POST", f"/api/v1/entities/{ENTITY_IDS[0]}/events", 200, json=body)
    for entity_id in SPARE_ENTITY_IDS:
        api.call(
            "POST",
            f"/api/v1/entities/{entity_id}/create",
            201,
            json={"machine_name": ORDER_MACHINE},
        )
    seeded.entity_ids += ENTITY_IDS
    seeded.spare_entity_ids += SPARE_ENTITY_IDS


def submit_events(api: Seeder, seeded: Seeded) -> None:
    """Queued events of the worker demo's machine: ones the drain completes, rejects and
    dead-letters (a poison fill: its guard raises, one attempt allowed), and ones left pending
    (due next year)."""
    later = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    events: list[dict[str, Any]] = [
        {"entity_id": "order-1", "trigger": "exchange_ack", "idempotency_key": "seed-ack-1"},
        {"entity_id": "order-2", "trigger": "exchange_ack", "idempotency_key": "seed-ack-2"},
        {"entity_id": "order-3", "trigger": "exchange_ack"},
        {"entity_id": "order-1", "trigger": "fill", "context": {"qty": 5}},
        {"entity_id": "order-2", "trigger": "fill", "context": {"poison": True}, "max_attempts": 1},
        {"entity_id": "order-3", "trigger": "complete"},  # OPEN has no complete: rejected
        {"entity_id": "order-4", "trigger": "exchange_ack", "fires_at": later},
        {"entity_id": "order-5", "trigger": "exchange_ack", "fires_at": later},
    ]
    answer = api.call(
        "POST",
        "/api/v1/events/batch",
        201,
        json={"events": [{"machine": FLEET_MACHINE, **event} for event in events]},
    )
    seeded.event_ids += [item["id"] for item in answer["items"]]
    seeded.idempotency_keys += ["seed-ack-1", "seed-ack-2"]


class _Exchange:
    """The worker demo's guard and actions, failing on purpose: a poison fill raises and
    ``notify`` always fails (its outbox rows go dead after one attempt)."""

    def exchange_ok(self, context: Mapping[str, Any]) -> bool:
        if context.get("poison"):
            raise RuntimeError("poison fill (seeded)")
        return True

    def notify(self, _context: Mapping[str, Any]) -> None:
        raise RuntimeError("notify is down (seeded)")

    def record_fill(self, _context: Mapping[str, Any]) -> None:
        return None


def drain(db_url: str) -> None:
    """Apply the due events with the fleet's own runtime (one attempt per action)."""
    exchange = _Exchange()
    guards, actions = GuardRegistry(), ActionRegistry()
    guards.register("exchange_ok", exchange.exchange_ok)
    actions.register("notify", exchange.notify)
    actions.register("record_fill", exchange.record_fill)
    settings = settings_for(db_url, action_max_attempts=1, max_attempts=1)
    runtime = Runtime.from_settings(settings, concurrency=1, guards=guards, actions=actions)
    try:
        stored = runtime.machines.stored
        assert stored is not None
        stored.refresh()
        runtime.processor.drain()
        runtime.outbox.sweep()
    finally:
        runtime.close()


#: What the drain must have left: events and outbox rows in each of these states.
EVENT_STATUSES = ("pending", "completed", "rejected", "dead")
ACTION_STATUSES = ("done", "dead")


def collect_actions(api: Seeder, seeded: Seeded) -> None:
    """The outbox rows the drain left; every status the fuzzer should meet must be there."""
    for status in EVENT_STATUSES:
        if not api.call("GET", "/api/v1/events", 200, params={"status": status})["items"]:
            raise RuntimeError(f"seeding: no {status} event after the drain")
    for status in ACTION_STATUSES:
        if not api.call("GET", "/api/v1/actions", 200, params={"status": status})["items"]:
            raise RuntimeError(f"seeding: no {status} action after the drain")
    page = api.call("GET", "/api/v1/actions", 200, params={"limit": 50})
    seeded.action_ids += [item["id"] for item in page["items"]]


def webhooks_and_keys(api: Seeder, seeded: Seeded) -> None:
    """Two webhooks (one only the deleting route names) to a port nothing listens on, and a
    viewer key."""
    for name, spare in (("seed-dead-letters", False), ("seed-spare", True)):
        body = {
            "name": name,
            "url": "http://127.0.0.1:9/hook",
            "kinds": ["dead_letter", "transition.failed"],
            "machine": FLEET_MACHINE,
        }
        made = api.call("POST", "/api/v1/webhooks", 201, json=body)
        (seeded.spare_webhook_ids if spare else seeded.webhook_ids).append(made["id"])
    key = api.call("POST", "/api/v1/api-keys", 201, json={"name": "seed viewer", "role": "viewer"})
    seeded.key_ids.append(key["id"])


def discovery(api: Seeder, seeded: Seeded) -> None:
    """Observations of the quick-start machine's entities, a candidate built from them, two
    drafts and a shadow of the worker demo's machine."""
    start = datetime.now(UTC) - timedelta(hours=2)
    observations = [
        {
            "entity_id": f"seen-{n}",
            "machine_name": ORDER_MACHINE,
            "state": state,
            "observed_at": (start + timedelta(minutes=n * 10 + step)).isoformat(),
            "source": "seed",
        }
        for n in range(4)
        for step, state in enumerate(("PENDING", "OPEN", "FILLED")[: 2 + n % 2])
    ]
    api.call("POST", "/api/v1/discovery/observations", 200, json={"observations": observations})
    candidate = api.call(
        "POST", "/api/v1/discovery/candidates/build", 201, json={"machine_name": ORDER_MACHINE}
    )
    seeded.candidate_versions.append(candidate["version"])
    for title, kept in (("seed draft", seeded.draft_ids), ("seed spare", seeded.spare_draft_ids)):
        draft = api.call(
            "POST",
            f"/api/v1/discovery/machines/{ORDER_MACHINE}/drafts",
            201,
            json={"title": title, "entity_ids": ["seen-0", "seen-1"]},
        )
        kept.append(draft["id"])
    shadow = yaml.safe_load(_definition("fleet_demo.yaml"))
    api.call(
        "POST",
        f"/api/v1/discovery/shadow/{FLEET_MACHINE}",
        201,
        json={"candidate": shadow, "sample_rate": 0.5},
    )


def seed(base: str, headers: Mapping[str, str], db_url: str) -> Seeded:
    """Fill the database of the API at ``base`` (on ``db_url``) through its own routes."""
    seeded = Seeded()
    now = datetime.now(UTC)
    seeded.moments += [
        (now + delta).isoformat()
        for delta in (-timedelta(days=30), timedelta(0), timedelta(hours=1))
    ]
    with httpx.Client(base_url=base, headers=dict(headers), timeout=60) as client:
        api = Seeder(client)
        publish_machines(api, seeded)
        create_entities(api, seeded)
        submit_events(api, seeded)
        drain(db_url)
        collect_actions(api, seeded)
        webhooks_and_keys(api, seeded)
        discovery(api, seeded)
    return seeded


def _toml(value: object) -> str:
    """A TOML value (JSON's spelling of strings, numbers and arrays is TOML's too)."""
    return json.dumps(value, ensure_ascii=False)


def fuzz_config(seeded: Seeded, probability: float = PROBABILITY) -> str:
    """``schemathesis.toml`` of a run on ``seeded``: the dictionaries and their bindings."""
    dictionaries = {
        "machines": seeded.machines,
        "spare_machines": seeded.spare_machines,
        "entities": seeded.entity_ids,
        "spare_entities": seeded.spare_entity_ids,
        "triggers": seeded.triggers,
        "states": seeded.states,
        "events": seeded.event_ids,
        "actions": seeded.action_ids,
        "webhooks": seeded.webhook_ids,
        "spare_webhooks": seeded.spare_webhook_ids,
        "keys": seeded.key_ids,
        "drafts": seeded.draft_ids,
        "spare_drafts": seeded.spare_draft_ids,
        "versions": seeded.candidate_versions,
        "idempotency_keys": seeded.idempotency_keys,
        "moments": seeded.moments,
    }
    lines = []
    for name, values in dictionaries.items():
        if values:
            lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}", ""]
    bindings = {key: name for key, name in BINDINGS.items() if dictionaries[name]}
    lines.append("[parameters]")
    lines += [_binding(key, name, probability) for key, name in bindings.items()]
    for operation, overrides in SPARE_OPERATIONS.items():
        lines += ["", "[[operations]]", f"include-name = {_toml(operation)}"]
        lines.append("[operations.parameters]")
        lines += [
            _binding(key, name, probability)
            for key, name in overrides.items()
            if dictionaries[name]
        ]
    return "\n".join(lines) + "\n"


def _binding(key: str, dictionary: str, probability: float) -> str:
    return f"{_toml(key)} = {{ dictionary = {_toml(dictionary)}, probability = {probability} }}"


#: Which dictionary a parameter takes its real values from (``location.name``; ``body.`` with
#: ``[*]`` for list items), on every operation.
BINDINGS: dict[str, str] = {
    "path.name": "machines",
    "path.machine": "machines",
    "path.machine_name": "machines",
    "path.entity_id": "entities",
    "path.event_id": "events",
    "path.webhook_id": "webhooks",
    "path.key_id": "keys",
    "path.draft_id": "drafts",
    "path.version": "versions",
    "query.machine_name": "machines",
    "query.machine": "machines",
    "query.entity_id": "entities",
    "query.trigger": "triggers",
    "query.event_id": "events",
    "query.idempotency_key": "idempotency_keys",
    "body.machine_name": "machines",
    "body.machine": "machines",
    "body.entity_id": "entities",
    "body.trigger": "triggers",
    "body.state": "states",
    "body.entity_ids[*]": "entities",
    "body.events[*].machine": "machines",
    "body.events[*].entity_id": "entities",
    "body.events[*].trigger": "triggers",
    "body.items[*].entity_id": "entities",
    "body.ids[*]": "events",
    "body.filter.machine": "machines",
    "body.filter.entity_id": "entities",
    "body.fires_at": "moments",
    "body.events[*].fires_at": "moments",
}

#: Operations that retire or delete what they name: only the spare ids, so that the rest of
#: the run still finds the seeded fleet.
SPARE_OPERATIONS: dict[str, dict[str, str]] = {
    "DELETE /api/v1/machines/{name}": {"path.name": "spare_machines"},
    "PUT /api/v1/machines/{name}": {"path.name": "spare_machines"},
    "POST /api/v1/entities/{entity_id}/purge": {"path.entity_id": "spare_entities"},
    "POST /api/v1/entities/{entity_id}/archive": {"path.entity_id": "spare_entities"},
    "DELETE /api/v1/webhooks/{webhook_id}": {"path.webhook_id": "spare_webhooks"},
    "DELETE /api/v1/discovery/machines/{machine_name}/drafts/{draft_id}": {
        "path.draft_id": "spare_drafts"
    },
    "POST /api/v1/actions/retry": {"body.ids[*]": "actions"},
    "POST /api/v1/actions/discard": {"body.ids[*]": "actions"},
    "GET /api/v1/actions": {"query.event_id": "events"},
}


__all__ = ["BINDINGS", "PROBABILITY", "SPARE_OPERATIONS", "Seeded", "fuzz_config", "seed"]
