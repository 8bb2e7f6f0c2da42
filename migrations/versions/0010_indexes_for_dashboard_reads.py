"""Indexes for the dashboard's reads, which read whole tables on every request.

- ``trend_minute`` and ``trend_hour`` by ``(stream, bucket)``: the latest bucket
  (``GET /v1/trends`` and ``/v1/entities`` without ``to``) and the watchlist's
  sparklines (every entity's buckets in a window). The primary key starts with
  ``(stream, entity)`` and the other index with ``entity``, so neither serves a bucket
  range across entities. A read of all streams reads each stream's part of the index
  (``services/api/query.py``): an index on ``bucket`` alone would also be chosen for
  one stream, and walk through all the other stream's newer buckets to find the latest
  of a stream replayed from older history. Stream and bucket never change once a row
  is written: PostgreSQL's HOT updates of the aggregator's upserts still apply
  (``updated_at`` stays unindexed, see 0005).
- ``alerts (fired_at, id)``: the alert list and the live feed's snapshot, newest first
  (read backwards: ``ORDER BY fired_at DESC, id DESC``, and pages after
  ``(fired_at, id) < (...)``).
- ``alerts (entity, stream) WHERE status <> 'resolved'``: the open alerts of the
  watchlist; it holds only the alerts not resolved, a few among the kept history.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TREND_TABLES = ("trend_minute", "trend_hour")


def upgrade() -> None:
    for table in TREND_TABLES:
        op.create_index(f"ix_{table}_stream_bucket", table, ["stream", "bucket"])
    op.create_index("ix_alerts_fired_at_id", "alerts", ["fired_at", "id"])
    op.create_index(
        "ix_alerts_unresolved", "alerts", ["entity", "stream"], postgresql_where=sa.text("status <> 'resolved'")
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_unresolved", table_name="alerts")
    op.drop_index("ix_alerts_fired_at_id", table_name="alerts")
    for table in reversed(TREND_TABLES):
        op.drop_index(f"ix_{table}_stream_bucket", table_name=table)
