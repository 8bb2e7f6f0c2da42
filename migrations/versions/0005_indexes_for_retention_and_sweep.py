"""Indexes for the two periodic scans that read whole tables.

- ``counted_events.counted_at``: the aggregator's retention pass (every 5 minutes)
  deletes ledger ids older than the ledger retention; without an index that reads the
  whole ledger (30 days of event ids) to find the few minutes that expired.
- ``trend_hour.updated_at``: the alerter's sweep (every 30 s) looks for keys updated
  since its last sweep. It now reads the hourly rollup, 60 times smaller than
  ``trend_minute`` and updated in the same transaction, through this index.
  (``trend_minute.updated_at`` stays unindexed: an index on a column every upsert
  changes would stop PostgreSQL's HOT updates on the busiest table.)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_counted_events_counted_at", "counted_events", ["counted_at"])
    op.create_index("ix_trend_hour_updated_at", "trend_hour", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_trend_hour_updated_at", table_name="trend_hour")
    op.drop_index("ix_counted_events_counted_at", table_name="counted_events")
