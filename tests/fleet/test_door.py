"""The door's rules, the same cases and the same errors on PostgreSQL and SQLite.

Every refusal is an ``InvalidEventError`` naming the field and the rule, and stores nothing;
an idempotency key reused for a different event is a conflict, not a silent duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from pystator import IdempotencyConflictError, InvalidEventError
from pystator.fleet.door import Limits
from pystator.fleet.producer import EventSpec
from pystator.fsm_core.records import ArmedTimer
from pystator.stores.sql import submit_queries
from pystator.stores.sql.connections import dispose
from pystator.stores.sql.schema import idempotency_conflicts
from tests.support.worker import MACHINE, Rig, make_rig

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    name = "pg_migrated_url" if request.param == "postgresql" else "sqlite_migrated_url"
    rig = make_rig(str(request.getfixturevalue(name)))
    yield rig
    dispose(rig.engine)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, change, field named in the error, rule)
    ("nul in a context string", {"context": {"note": "a\x00b"}}, "context.note", "nul"),
    ("nul in a context key", {"context": {"a\x00": 1}}, "context", "nul"),
    ("nul deep inside", {"context": {"items": [{"x": "\x00"}]}}, "context.items[0].x", "nul"),
    ("lone surrogate in context", {"context": {"s": "\ud800"}}, "context.s", "encoding"),
    ("lone surrogate in entity_id", {"entity_id": "a\udfff"}, "entity_id", "encoding"),
    ("control character in entity_id", {"entity_id": "a\nb"}, "entity_id", "control_character"),
    ("control character in trigger", {"trigger": "op\x07en"}, "trigger", "control_character"),
    (
        "control in idempotency_key",
        {"idempotency_key": "k\x1b"},
        "idempotency_key",
        "control_character",
    ),
    ("blank entity_id", {"entity_id": "   "}, "entity_id", "type"),
    ("entity_id too long", {"entity_id": "x" * 256}, "entity_id", "length"),
    ("key too long", {"idempotency_key": "k" * 256}, "idempotency_key", "length"),
    ("2,000 levels deep", {"context": _nested(2000)}, "context", "depth"),
    ("33 levels deep", {"context": _nested(33)}, "context", "depth"),
    ("too large", {"context": {"blob": "y" * 70_000}}, "context", "size"),
    ("not a mapping", {"context": ["a", "list"]}, "context", "type"),
    ("not JSON", {"context": {"when": datetime(2026, 1, 1)}}, "context.when", "type"),
    ("non-string key", {"context": {1: "one"}}, "context", "key"),
    ("NaN", {"context": {"x": float("nan")}}, "context.x", "number"),
    ("max_attempts 0", {"max_attempts": 0}, "max_attempts", "range"),
    ("max_attempts 101", {"max_attempts": 101}, "max_attempts", "range"),
    ("max_attempts not an int", {"max_attempts": True}, "max_attempts", "type"),
    ("fires_at before 1970", {"fires_at": datetime(1969, 12, 31, tzinfo=UTC)}, "fires_at", "range"),
    ("fires_at in 11 years", {"fires_at": "FAR"}, "fires_at", "range"),
    ("fires_at not a datetime", {"fires_at": "2026-01-01"}, "fires_at", "type"),
    ("unknown trigger", {"trigger": "fly"}, "trigger", "unknown"),
]


@pytest.mark.parametrize(
    ("change", "field", "rule"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_bad_input_is_refused_with_its_field_and_rule(
    rig: Rig, change: dict[str, Any], field: str, rule: str
) -> None:
    fields: dict[str, Any] = {"machine": MACHINE, "entity_id": "a", "trigger": "open", **change}
    if fields.get("fires_at") == "FAR":
        fields["fires_at"] = rig.clock() + timedelta(days=366 * 11)
    with pytest.raises(InvalidEventError) as refused:
        rig.producer.submit(EventSpec(**fields))
    details = refused.value.details
    assert details["rule"] == rule
    assert details["path"].startswith(field) and str(refused.value).startswith(details["path"])
    assert details["field"] == field.split(".")[0]
    with pytest.raises(InvalidEventError):  # one bad item refuses the whole batch
        rig.producer.submit_many(
            [EventSpec(machine=MACHINE, entity_id="ok", trigger="open"), fields]
        )
    assert rig.events() == []


def test_times_are_stored_in_utc_and_naive_ones_are_taken_as_utc(rig: Rig) -> None:
    east = timezone(timedelta(hours=5))
    at = rig.clock() + timedelta(hours=1)
    first = rig.producer.submit(
        EventSpec(machine=MACHINE, entity_id="a", trigger="open", fires_at=at.astimezone(east))
    )
    second = rig.producer.submit(
        EventSpec(machine=MACHINE, entity_id="b", trigger="open", fires_at=at.replace(tzinfo=None))
    )
    assert rig.event(first).fires_at == at and rig.event(second).fires_at == at
    assert rig.event(first).fires_at.utcoffset() == timedelta(0)


def test_unicode_that_every_database_can_store_is_accepted(rig: Rig) -> None:
    context = {"name": "Zoë 東京 \U0001f680", "tab\tkey": "line\nbreak is fine in a value"}
    event_id = rig.producer.submit(
        EventSpec(machine=MACHINE, entity_id="ünïcode-東京", trigger="open", context=context)
    )
    assert dict(rig.event(event_id).context) == context
    rig.processor.drain()
    assert rig.record("ünïcode-東京").state == "open"


def test_the_limits_are_settings(rig: Rig) -> None:
    rig.producer.limits = Limits(max_context_bytes=100, max_context_depth=3)
    with pytest.raises(InvalidEventError, match="the limit is 100"):
        rig.producer.submit(
            EventSpec(machine=MACHINE, entity_id="a", trigger="open", context={"x": "y" * 200})
        )
    with pytest.raises(InvalidEventError, match="deeper than 3"):
        rig.producer.submit(
            EventSpec(machine=MACHINE, entity_id="a", trigger="open", context=_nested(4))
        )
    rig.producer.submit(
        EventSpec(machine=MACHINE, entity_id="a", trigger="open", context=_nested(3))
    )


# --- idempotency --------------------------------------------------------------------------


def _keyed(entity: str = "a", trigger: str = "open", **context: Any) -> EventSpec:
    return EventSpec(
        machine=MACHINE, entity_id=entity, trigger=trigger, context=context, idempotency_key="k"
    )


def test_the_same_event_under_one_key_is_a_duplicate(rig: Rig) -> None:
    first = rig.producer.submit(_keyed(x=1, y=[1, 2]))
    again = rig.producer.submit(
        EventSpec(
            machine=MACHINE,
            entity_id="a",
            trigger="open",
            context={"y": [1, 2], "x": 1},  # key order does not make it another event
            idempotency_key="k",
        )
    )
    assert (first.duplicate, again.duplicate, again) == (False, True, first)
    assert rig.event(first).duplicate_count == 1


@pytest.mark.parametrize(
    "other",
    [_keyed(entity="b"), _keyed(trigger="close"), _keyed(x=2)],
    ids=["another entity", "another trigger", "another payload"],
)
def test_a_key_reused_for_another_event_is_a_conflict(rig: Rig, other: EventSpec) -> None:
    first = rig.producer.submit(_keyed(x=1))
    with pytest.raises(IdempotencyConflictError) as conflict:
        rig.producer.submit(other)
    assert conflict.value.event_id == first
    assert conflict.value.details == {"machine": MACHINE, "idempotency_key": "k", "event_id": first}
    with pytest.raises(IdempotencyConflictError):  # in a batch: nothing of the batch is kept
        rig.producer.submit_many([EventSpec(machine=MACHINE, entity_id="z", trigger="open"), other])
    assert [e.id for e in rig.events()] == [first]
    assert rig.event(first).duplicate_count == 0  # a conflict is not counted as a duplicate
    with rig.engine.connect() as conn:
        recorded = conn.execute(sa.select(idempotency_conflicts)).mappings().all()
    assert len(recorded) == 2
    assert {r["event_id"] for r in recorded} == {first}
    assert {r["entity_id"] for r in recorded} == {other.entity_id}


def test_repeats_of_one_key_inside_a_batch_are_settled_too(rig: Rig) -> None:
    same = rig.producer.submit_many([_keyed(x=1), _keyed(x=1)])
    assert [r.duplicate for r in same] == [False, True] and same[0] == same[1]
    with pytest.raises(IdempotencyConflictError):
        rig.producer.submit_many([_keyed(entity="q", x=1), _keyed(entity="q", x=2)])


def test_timer_events_do_not_share_the_users_key_space(rig: Rig) -> None:
    timer = ArmedTimer(
        machine=MACHINE, entity_id="a", key="after:0", state="open", entry=1, trigger="close"
    )
    rig.producer.submit(
        EventSpec(machine=MACHINE, entity_id="a", trigger="open", idempotency_key=timer.timer_id)
    )
    with rig.engine.begin() as conn:
        (fired,) = submit_queries.insert_timer_events(conn, [timer], rig.clock())
    assert not fired.duplicate and not fired.conflict
    assert rig.event(fired.id).idempotency_key is None
