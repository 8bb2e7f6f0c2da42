"""SQLAlchemy 2 models. The schema is owned by Alembic (``migrations/``):
services never call ``create_all``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType


class Base(DeclarativeBase):
    """Declarative base of all tonewatch tables."""


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (``xid8``); asyncpg reads and writes it as an int."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "XID8"


ischema_names.setdefault("xid8", Xid8)  # reflection (Alembic's drift check) knows the type


class Entity(Base):
    """A watched entity (company, index, institution) and how to find it in text."""

    __tablename__ = "entities"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list[str]] = mapped_column(JSONB, default=list)
    case_sensitive_aliases: Mapped[list[str]] = mapped_column(JSONB, default=list)
    tickers: Mapped[list[str]] = mapped_column(JSONB, default=list)
    group: Mapped[str | None] = mapped_column("grp", String(64), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # since when the entity is on the watchlist (added, or made active again) and in its
    # current group (added, or moved): where rules over a group or every entity begin to
    # cover it (see shared.db.watchlist.upsert and services.alerter.evaluate)
    watched_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    group_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CountedEvent(Base):
    """(id, stream) of events already counted in the buckets: the exactly-once ledger.
    Ids are unique within a stream only (a news and a chat file may both number rows 1..N).

    Kept longer than ``scored_events`` (which holds text for drill-down)."""

    __tablename__ = "counted_events"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    stream: Mapped[str] = mapped_column(String(8), primary_key=True)
    counted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_counted_events_counted_at", "counted_at"),)


class ScoredEventRow(Base):
    """A classified event with redacted, capped text, for drill-down and explanations;
    keyed by (id, stream) like the ledger."""

    __tablename__ = "scored_events"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    stream: Mapped[str] = mapped_column(String(8), primary_key=True)
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entities: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    text: Mapped[str] = mapped_column(Text)
    sentiment: Mapped[str] = mapped_column(String(16))
    sentiment_confidence: Mapped[float] = mapped_column(Float)
    sentiment_score: Mapped[float] = mapped_column(Float)
    negative_prob: Mapped[float] = mapped_column(Float)
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    intent_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_scored_events_entities", "entities", postgresql_using="gin"),
        Index("ix_scored_events_event_time", "event_time"),
        Index("ix_scored_events_stream_event_time", "stream", "event_time"),  # a stream's latest (0014)
        Index("ix_scored_events_created_at", "created_at"),
    )


class _BucketColumns:
    stream: Mapped[str] = mapped_column(String(8), primary_key=True)
    entity: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    negative: Mapped[int] = mapped_column(BigInteger, default=0)
    neutral: Mapped[int] = mapped_column(BigInteger, default=0)
    positive: Mapped[int] = mapped_column(BigInteger, default=0)
    score_sum: Mapped[float] = mapped_column(Float, default=0.0)
    confidence_sum: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class TrendMinute(_BucketColumns, Base):
    """Per (stream, entity, minute, model version) sentiment counts."""

    __tablename__ = "trend_minute"
    __table_args__ = (
        Index("ix_trend_minute_entity_bucket", "entity", "bucket"),
        # the latest bucket and the watchlist's window across entities, read stream by
        # stream (migration 0010); stream and bucket never change: upserts stay HOT updates
        Index("ix_trend_minute_stream_bucket", "stream", "bucket"),
    )


class TrendHour(_BucketColumns, Base):
    """Hourly rollup of :class:`TrendMinute`, maintained in the same transaction."""

    __tablename__ = "trend_hour"
    __table_args__ = (
        Index("ix_trend_hour_entity_bucket", "entity", "bucket"),
        Index("ix_trend_hour_stream_bucket", "stream", "bucket"),
        # the alerter's sweep finds recently updated keys here (not in trend_minute,
        # where an index on updated_at would stop HOT updates on the busiest table)
        Index("ix_trend_hour_updated_at", "updated_at"),
    )


class RoutingRule(Base):
    """Intent to work-queue routing table."""

    __tablename__ = "routing_rules"

    intent: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64))


class RoutedEvent(Base):
    """Ledger of routed chat messages: each one's routing decision, written (and counted)
    once before it is sent; ``sent_at`` is NULL until the queue acknowledged it, and a chat
    not yet sent is sent again to the recorded queue (migration 0009). ``priority`` and
    ``reason`` are NULL on rows from before 0009, all sent."""

    __tablename__ = "routed_events"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64))
    priority: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    routed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_routed_events_sent_at", "sent_at"),)  # the router's retention


class RoutingMinute(Base):
    """Per-minute routing counts per queue."""

    __tablename__ = "routing_minute"

    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    priority: Mapped[int] = mapped_column(BigInteger, default=0)


class ApiKey(Base):
    """API keys, stored as SHA-256 hashes."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


INT4_MAX = 2**31 - 1
"""Largest value of an ``Integer`` column such as ``alert_rules.id``."""


class AlertRule(Base):
    """A spike-detection rule."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    stream: Mapped[str] = mapped_column(String(8), default="news")
    scope: Mapped[dict[str, Any]] = mapped_column(JSONB)
    window_s: Mapped[int] = mapped_column(Integer)
    min_volume: Mapped[int] = mapped_column(Integer)
    abs_threshold: Mapped[float] = mapped_column(Float)
    z_threshold: Mapped[float] = mapped_column(Float)
    baseline: Mapped[str] = mapped_column(String(16), default="ewma")
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    cooldown_s: Mapped[int] = mapped_column(Integer)
    resolve_after_s: Mapped[int] = mapped_column(Integer)
    channels: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Since when the rule covers what it covers now (database clock): set at creation, on
    # re-enabling, and on a stream or scope change that may cover new entities (migration
    # 0011; :func:`services.alerter.repo.update_rule`). A key's first evaluation starts
    # with the data stored after it.
    covered_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Alert(Base):
    """An alert; (rule, entity, episode) is unique: the backstop against duplicates."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(64))
    stream: Mapped[str] = mapped_column(String(8))
    episode: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="open")
    severity: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONB)
    model_version: Mapped[str] = mapped_column(String(64))
    # Every webhook channel of the firing is done: delivered, or its attempts used up
    # (whatever the alerts topic does).
    notified: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # When an alerter took the webhooks on; a claim older than the lease is taken over.
    notify_claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The token of the claim in force (0015): each claim sets a new one, a retry scheduled for
    # later clears it, and a renewal extends the claim only while its token is the one the
    # renewing alerter holds. NULL: no claim held, or one an alerter before 0015 made.
    notify_claim: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The last status produced to the alerts topic (NULL: none yet); the outbox announces every change.
    announced_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The transaction that inserted the alert or last changed its status (the live feed's
    # change marker). Set by the trigger ``alerts_mark_change`` (migration 0008) on every
    # INSERT and UPDATE, whoever writes: never set it here, a value given is overwritten.
    changed_xid: Mapped[int] = mapped_column(
        Xid8, server_default=text("pg_current_xact_id()"), server_onupdate=FetchedValue()
    )

    __table_args__ = (
        UniqueConstraint("rule_id", "entity", "episode", name="uq_alerts_rule_entity_episode"),
        Index("ix_alerts_status", "status"),
        Index("ix_alerts_changed_xid", "changed_xid"),
        Index(
            "ix_alerts_unannounced",
            "fired_at",
            postgresql_where=text("NOT notified OR announced_status IS DISTINCT FROM status"),
        ),
        # newest first (read backwards) and keyset pages on (fired_at, id) (migration 0010)
        Index("ix_alerts_fired_at_id", "fired_at", "id"),
        # the watchlist's open alerts; the query must write 'resolved' as a literal to use it
        Index("ix_alerts_unresolved", "entity", "stream", postgresql_where=text("status <> 'resolved'")),
    )


class AlertState(Base):
    """Detector state of record per (rule, entity, model version): baseline and episode."""

    __tablename__ = "alert_state"

    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDelivery(Base):
    """Delivery log of alert webhooks."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_alert_id", "alert_id"),)  # an alert's attempts (0013)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    # The channel's format (``json``, ``slack``): a rule may send one URL in both, each
    # delivered, refused or given up on its own (0015). NULL: written before 0015 (or by an
    # alerter of that version during a rolling upgrade); read as that version read it
    # (services.alerter.deliver.pending).
    format: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
