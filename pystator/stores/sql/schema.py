"""SQLAlchemy table definitions: the single source of the schema (Alembic migrations mirror it).

Works on PostgreSQL (JSONB, partial indexes) and SQLite (JSON, partial indexes).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY columns.
IdType = BigInteger().with_variant(Integer(), "sqlite")

MACHINE_NAME_LENGTH = 200
ENTITY_ID_LENGTH = 255
TRIGGER_LENGTH = 200
IDEMPOTENCY_KEY_LENGTH = 255


def _ts(name: str, *, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


entity_states = Table(
    "entity_states",
    metadata,
    Column("machine", String(MACHINE_NAME_LENGTH), primary_key=True),
    Column("entity_id", String(ENTITY_ID_LENGTH), primary_key=True),
    Column("state", Text, nullable=False),
    Column("context", JsonType, nullable=False),
    # active state name -> version at which it was entered (makes timers never stale)
    Column("entries", JsonType, nullable=False),
    Column("version", BigInteger, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

transition_history = Table(
    "transition_history",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("machine", String(MACHINE_NAME_LENGTH), nullable=False),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("version", BigInteger, nullable=False),  # the entity version this transition produced
    Column("source_state", Text, nullable=True),  # NULL for the creating write
    Column("target_state", Text, nullable=False),
    Column("trigger", String(TRIGGER_LENGTH), nullable=True),
    Column("event_id", BigInteger, nullable=True),  # worker_events.id when applied by the fleet
    Column("origin", String(16), nullable=False, server_default="direct"),  # direct|event|timer
    Column("actions", JsonType, nullable=False),
    Column("payload", JsonType, nullable=True),
    _ts("created_at"),
    UniqueConstraint("machine", "entity_id", "version"),
)

# Event statuses: pending -> completed | rejected | stale | dead | cancelled | discarded
worker_events = Table(
    "worker_events",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),  # submission order
    Column("machine", String(MACHINE_NAME_LENGTH), nullable=False),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("trigger", String(TRIGGER_LENGTH), nullable=False),
    Column("context", JsonType, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("origin", String(16), nullable=False, server_default="submit"),  # submit|timer|replay
    Column("idempotency_key", String(IDEMPOTENCY_KEY_LENGTH), nullable=True),
    Column("duplicate_count", Integer, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False, server_default="5"),
    _ts("fires_at"),  # not before this time (retry backoff and delayed events move it)
    Column("timer_key", String(400), nullable=True),  # for timers: TimerSpec.key
    Column("timer_state", Text, nullable=True),  # for timers: the state that armed it
    Column("timer_entry", BigInteger, nullable=True),  # for timers: version of that entry
    Column("errors", JsonType, nullable=False),  # one entry per failed attempt
    Column("outcome", JsonType, nullable=True),  # reason / target state once finished
    _ts("created_at"),
    _ts("updated_at"),
    _ts("completed_at", nullable=True),
    UniqueConstraint("machine", "idempotency_key"),
    Index(
        "ix_worker_events_pending_due",
        "fires_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index(
        "ix_worker_events_pending_entity",
        "machine",
        "entity_id",
        "id",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index("ix_worker_events_status_updated", "status", "updated_at"),
)

# Outbox statuses: pending -> done | dead
action_outbox = Table(
    "action_outbox",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),  # the action's dedup token
    Column("event_id", BigInteger, nullable=True),
    Column("machine", String(MACHINE_NAME_LENGTH), nullable=False),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("entity_version", BigInteger, nullable=False),
    Column("action", String(TRIGGER_LENGTH), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("params", JsonType, nullable=False),
    Column("context", JsonType, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("errors", JsonType, nullable=False),
    _ts("available_at"),
    _ts("created_at"),
    _ts("completed_at", nullable=True),
    Index(
        "ix_action_outbox_pending_available",
        "available_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)

# Armed timers of the fleet: one row per (entity, state entry, timer) until it fires or its state
# entry is left (then the row is deleted). Firing turns the row into a worker_events row in the
# same transaction, so the event's id (its place in the entity's order) is its firing time.
worker_timers = Table(
    "worker_timers",
    metadata,
    Column("timer_id", Text, primary_key=True),  # ArmedTimer.timer_id: machine|entity|key|entry
    Column("machine", String(MACHINE_NAME_LENGTH), nullable=False),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("trigger", String(TRIGGER_LENGTH), nullable=False),
    Column("timer_key", String(400), nullable=False),
    Column("timer_state", Text, nullable=False),
    Column("timer_entry", BigInteger, nullable=False),
    _ts("due_at"),
    _ts("handed_at", nullable=True),  # when handed to an external scheduler (Celery ETA)
    _ts("created_at"),
    Index("ix_worker_timers_due_at", "due_at"),
)

__all__ = [
    "ENTITY_ID_LENGTH",
    "IDEMPOTENCY_KEY_LENGTH",
    "MACHINE_NAME_LENGTH",
    "TRIGGER_LENGTH",
    "action_outbox",
    "entity_states",
    "metadata",
    "transition_history",
    "worker_events",
    "worker_timers",
]
