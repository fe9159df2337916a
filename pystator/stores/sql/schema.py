"""SQLAlchemy table definitions: the single source of the schema (Alembic migrations mirror it).

Works on PostgreSQL (JSONB, partial indexes) and SQLite (JSON, partial indexes).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    FetchedValue,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from pystator.config.settings import WORKER_ID_MAX_LENGTH
from pystator.config.tracing import TRACEPARENT_LENGTH

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
FINGERPRINT_LENGTH = 64
WORKER_ID_LENGTH = WORKER_ID_MAX_LENGTH
PRINCIPAL_LENGTH = 200
ROLE_LENGTH = 16
CHANGE_KIND_LENGTH = 40
SOURCE_LENGTH = 200
SOURCE_EVENT_ID_LENGTH = 255


def _ts(name: str, *, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _commit_xid() -> Column[object]:
    """The writing transaction's id (PostgreSQL: ``pg_current_xact_id()``, its database
    default; SQLite: 0, its writers are serial). The feeds read in ``(commit_xid, id)`` order
    below the oldest running transaction, which makes their cursors commit-safe (migration
    0034; :mod:`pystator.stores.sql.feed_queries`)."""
    return Column("commit_xid", BigInteger, nullable=False, server_default=FetchedValue())


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
    # the registry version (machine_versions.version) of the entity's last write; NULL when the
    # definition came from a file or from code. A pinned machine applies events with it.
    Column("machine_version", Integer, nullable=True),
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
    Column(
        "origin", String(16), nullable=False, server_default="direct"
    ),  # direct|event|timer|replay|migration
    Column("actions", JsonType, nullable=False),
    Column("payload", JsonType, nullable=True),
    _ts("created_at"),
    # the registry version (machine_versions.version) of the definition that applied it; NULL
    # when the definition came from a file or from code
    Column("machine_version", Integer, nullable=True),
    # the context the guards saw (stored context with the payload merged over it): what replay
    # re-runs a candidate with; NULL on rows written before it was recorded
    Column("guard_context", JsonType, nullable=True),
    _commit_xid(),
    UniqueConstraint("machine", "entity_id", "version"),
    Index("ix_transition_history_created_at", "created_at"),  # retention
    Index("ix_transition_history_commit_xid_id", "commit_xid", "id"),  # the feed's order
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
    # sha256 of (entity, trigger, context) for keyed events: tells a replay from a conflict
    Column("fingerprint", String(FINGERPRINT_LENGTH), nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("completed_at", nullable=True),
    _ts("last_duplicate_at", nullable=True),  # the key's last repeat with the same content
    # W3C trace context of the submission (OpenTelemetry): the worker's apply span's parent
    Column("traceparent", String(TRACEPARENT_LENGTH), nullable=True),
    # event (a named trigger) | apply_data (a data update routed by ``when`` rules; 0033)
    Column("kind", String(16), nullable=False, server_default="event"),
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
    # operator listings, newest first, by status or by entity (keyset pagination on id)
    Index("ix_worker_events_status_id", "status", "id"),
    Index("ix_worker_events_entity_id", "entity_id", "id"),
    Index("ix_worker_events_created_at", "created_at"),  # time-window listings
    Index(
        "ix_worker_events_last_duplicate_at",
        "last_duplicate_at",
        postgresql_where=text("last_duplicate_at IS NOT NULL"),
        sqlite_where=text("last_duplicate_at IS NOT NULL"),
    ),
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
    Column("traceparent", String(TRACEPARENT_LENGTH), nullable=True),  # the apply span's
    Index(
        "ix_action_outbox_pending_available",
        "available_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index("ix_action_outbox_status_completed", "status", "completed_at"),  # retention
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
    _ts("due_at"),  # moved out by a failed firing (backoff)
    _ts("handed_at", nullable=True),  # when handed to an external scheduler (Celery ETA)
    _ts("created_at"),
    Column("attempts", Integer, nullable=False, server_default="0"),  # failed firings
    Column("errors", JsonType, nullable=False, server_default=text("'[]'")),
    _ts("dead_at", nullable=True),  # set when it failed its last firing attempt: never fires
    Column("traceparent", String(TRACEPARENT_LENGTH), nullable=True),  # the arming apply span's
    Index("ix_worker_timers_due_at", "due_at"),
)

# A reused idempotency key: the same key with a different event (the submission was refused).
idempotency_conflicts = Table(
    "idempotency_conflicts",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("machine", String(MACHINE_NAME_LENGTH), nullable=False),
    Column("idempotency_key", String(IDEMPOTENCY_KEY_LENGTH), nullable=False),
    Column("event_id", BigInteger, nullable=False),  # the event the key belongs to
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),  # what was refused
    Column("trigger", String(TRIGGER_LENGTH), nullable=False),
    Column("fingerprint", String(FINGERPRINT_LENGTH), nullable=False),
    _ts("created_at"),
    Index("ix_idempotency_conflicts_created_at", "created_at"),
)

# Events per minute, machine and outcome (applied, rejected, stale, retried, dead), added up by
# the workers: what charts read, kept apart from the events retention removes.
event_rollups = Table(
    "event_rollups",
    metadata,
    _ts("minute", nullable=False),
    Column("machine", String(MACHINE_NAME_LENGTH), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("minute", "machine", "outcome"),
)

# One row per worker process (a prefork child included): what it is and whether it progresses.
worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker_id", String(WORKER_ID_LENGTH), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # embedded | celery | child | relay
    _ts("started_at"),
    _ts("beat_at"),
    _ts("progress_at"),  # last finished unit of work, or now when idle
    Column("in_flight", Integer, nullable=False, server_default="0"),
    Column("applied", BigInteger, nullable=False, server_default="0"),
    Column("info", JsonType, nullable=False),  # concurrency, queue, duties' last ticks, stalls
    _ts("stopped_at", nullable=True),
    Index("ix_worker_heartbeats_host", "host"),
)

# The machine registry: one row per machine name, pointing at its current version (or retired).
machine_registry = Table(
    "machine_registry",
    metadata,
    Column("name", String(MACHINE_NAME_LENGTH), primary_key=True),
    Column("current_version", Integer, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("retired_at", nullable=True),  # retired: producers refuse it, history stays
)

# Every version of every stored machine; rows are only ever inserted (versions are immutable).
machine_versions = Table(
    "machine_versions",
    metadata,
    Column("name", String(MACHINE_NAME_LENGTH), primary_key=True),
    Column("version", Integer, primary_key=True),  # 1, 2, 3, ... per name
    Column("definition", JsonType, nullable=False),  # the validated document, as parsed
    Column("checksum", String(FINGERPRINT_LENGTH), nullable=False),  # sha256 of canonical JSON
    Column("created_by", String(PRINCIPAL_LENGTH), nullable=False),
    _ts("created_at"),
    # auto: entities move to this version on their next event; pinned: they stay on theirs
    Column("upgrade_policy", String(16), nullable=False, server_default="auto"),
)

# API keys, stored as the sha256 of the key (keys are random: a slow hash would add nothing).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),  # the key's first characters, for listings
    Column("key_hash", String(FINGERPRINT_LENGTH), nullable=False),
    Column("role", String(ROLE_LENGTH), nullable=False),
    Column("created_by", String(PRINCIPAL_LENGTH), nullable=False),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
    UniqueConstraint("key_hash"),
)

# One row per mutation through the HTTP API and the dashboard, and per configuration change
# through any door (the CLI, Python): who, when, which route (or command, or function), what it
# selected, how many; ``kind`` when it changed the configuration (migration 0036).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    _ts("at"),
    Column("principal", String(PRINCIPAL_LENGTH), nullable=False),
    Column("role", String(ROLE_LENGTH), nullable=False),
    Column("method", String(8), nullable=False),
    Column("route", String(200), nullable=False),  # the route's path template
    Column("target", String(400), nullable=True),  # a machine name, an event id, a key id
    Column("selection", JsonType, nullable=True),  # ids, filters, dry_run, limit as given
    Column("affected", Integer, nullable=True),
    Column("status", Integer, nullable=False),  # the HTTP status answered
    _commit_xid(),
    # machine.published, api_key.revoked, …: set on configuration changes only (the config feed)
    Column("kind", String(CHANGE_KIND_LENGTH), nullable=True),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_commit_xid_id", "commit_xid", "id"),  # where a feed's tail starts
    Index(  # the configuration-change feed: its rows are few among the submissions'
        "ix_audit_log_config_feed",
        "commit_xid",
        "id",
        postgresql_where=text("kind IS NOT NULL"),
        sqlite_where=text("kind IS NOT NULL"),
    ),
)

# Operator webhooks: where to POST which notices (signed with ``secret``, HMAC-SHA256).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(200), nullable=False),
    Column("kinds", JsonType, nullable=False),  # list of notice kinds it subscribes to
    Column("machine", String(MACHINE_NAME_LENGTH), nullable=True),  # None: every machine
    Column("states", JsonType, nullable=False),  # the states a dwell-time breach watches
    Column("dwell_seconds", Integer, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("created_by", String(PRINCIPAL_LENGTH), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

# One row per notice a webhook is to receive (the delivery log). The unique key makes finding a
# notice twice a no-op; the POST itself runs from ``action_outbox`` (row ``outbox_id``).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),  # X-Pystator-Delivery
    Column("webhook_id", BigInteger, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("source_key", String(600), nullable=False),  # what it is about (dedupe)
    Column("payload", JsonType, nullable=False),
    Column("outbox_id", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),  # pending | delivered | failing | dropped
    Column("attempts", Integer, nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    _ts("created_at"),
    _ts("delivered_at", nullable=True),
    UniqueConstraint("webhook_id", "kind", "source_key"),
    Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    # retention's picks: the finished deliveries of a status, oldest first (revision 0035)
    Index("ix_webhook_deliveries_status_delivered_at", "status", "delivered_at"),
)

# Discovery: states observed by outside systems (or classified from their records), one row per
# observation. ``id`` is the arrival order, which breaks ties between equal ``observed_at``; a
# ``source_event_id`` makes a re-sent observation a no-op. Inference reads a machine's rows in
# (entity_id, observed_at, id) order, the order of the last index.
discovery_observations = Table(
    "discovery_observations",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("machine", String(MACHINE_NAME_LENGTH), nullable=False),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("state", String(MACHINE_NAME_LENGTH), nullable=False),
    _ts("observed_at"),
    Column("trigger", String(TRIGGER_LENGTH), nullable=True),  # when the source names it
    Column("previous_state", String(MACHINE_NAME_LENGTH), nullable=True),  # when the source knows
    Column("source", String(SOURCE_LENGTH), nullable=False),
    Column("source_event_id", String(SOURCE_EVENT_ID_LENGTH), nullable=True),
    _ts("created_at"),
    UniqueConstraint("machine", "source", "source_event_id"),
    Index("ix_discovery_observations_order", "machine", "entity_id", "observed_at", "id"),
)

# Candidate machines built by inference, numbered 1, 2, 3, ... per machine; never updated.
discovery_candidates = Table(
    "discovery_candidates",
    metadata,
    Column("machine", String(MACHINE_NAME_LENGTH), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("config", JsonType, nullable=False),  # the candidate: an ordinary machine definition
    Column("edges", JsonType, nullable=False),  # every inferred edge, kept and dropped
    Column("summary", JsonType, nullable=False),  # thresholds, counts, initial/terminal states
    Column("draft_id", BigInteger, nullable=True),  # the draft it was built from, if any
    Column("created_by", String(PRINCIPAL_LENGTH), nullable=False),
    _ts("created_at"),
)

# Discovery drafts: a saved scope (entities, thresholds, mode, manual edges) per machine.
discovery_drafts = Table(
    "discovery_drafts",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("machine", String(MACHINE_NAME_LENGTH), nullable=False),
    Column("title", String(200), nullable=False),
    Column("entity_ids", JsonType, nullable=False),  # list of entity ids
    Column("min_edge_count", Integer, nullable=False),
    Column("min_confidence", Float, nullable=False),
    Column("mode", String(16), nullable=False),  # inference | manual
    Column("edge_selection", JsonType, nullable=False),  # list of [source, destination]
    Column("last_built_version", Integer, nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    Index("ix_discovery_drafts_machine", "machine", "id"),
)

# Shadow mode: a candidate definition evaluated beside a machine's active version on sampled
# events (never acting). ``status``: active | stopped | promoted; at most one active per machine.
machine_shadows = Table(
    "machine_shadows",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("machine", String(MACHINE_NAME_LENGTH), nullable=False),
    Column("definition", JsonType, nullable=False),  # the candidate, validated
    Column("checksum", String(FINGERPRINT_LENGTH), nullable=False),
    Column("sample_rate", Float, nullable=False),  # 0 < rate <= 1
    Column("status", String(16), nullable=False, server_default="active"),
    Column("matched", BigInteger, nullable=False, server_default="0"),
    Column("mismatched", BigInteger, nullable=False, server_default="0"),
    Column("promoted_version", Integer, nullable=True),  # the registry version it became
    Column("created_by", String(PRINCIPAL_LENGTH), nullable=False),
    _ts("created_at"),
    _ts("ended_at", nullable=True),
    Index("ix_machine_shadows_machine", "machine", "status"),
)

# Shadow differences, bounded: one row per (state, trigger, active target, shadow target, kind)
# of a shadow with its count and a few example events; retention prunes ended shadows' rows.
shadow_diffs = Table(
    "shadow_diffs",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("shadow_id", BigInteger, nullable=False),
    Column("source_state", Text, nullable=False),
    Column("trigger", String(TRIGGER_LENGTH), nullable=False),
    Column("active_target", Text, nullable=False),  # "" when the active version rejected
    Column("shadow_target", Text, nullable=False),  # "" when the shadow rejected or raised
    Column("kind", String(16), nullable=False),  # target | rejected | accepted | actions | error
    Column("count", BigInteger, nullable=False),
    Column("examples", JsonType, nullable=False),  # a few {entity_id, event_id, ...}
    _ts("first_seen"),
    _ts("last_seen"),
    UniqueConstraint(
        "shadow_id",
        "source_state",
        "trigger",
        "active_target",
        "shadow_target",
        "kind",
        name="uq_shadow_diffs_group",
    ),
)

__all__ = [
    "ENTITY_ID_LENGTH",
    "FINGERPRINT_LENGTH",
    "IDEMPOTENCY_KEY_LENGTH",
    "MACHINE_NAME_LENGTH",
    "PRINCIPAL_LENGTH",
    "ROLE_LENGTH",
    "SOURCE_EVENT_ID_LENGTH",
    "SOURCE_LENGTH",
    "TRIGGER_LENGTH",
    "WORKER_ID_LENGTH",
    "action_outbox",
    "api_keys",
    "audit_log",
    "discovery_candidates",
    "discovery_drafts",
    "discovery_observations",
    "entity_states",
    "event_rollups",
    "idempotency_conflicts",
    "machine_registry",
    "machine_shadows",
    "machine_versions",
    "metadata",
    "shadow_diffs",
    "transition_history",
    "webhook_deliveries",
    "webhooks",
    "worker_events",
    "worker_heartbeats",
    "worker_timers",
]
