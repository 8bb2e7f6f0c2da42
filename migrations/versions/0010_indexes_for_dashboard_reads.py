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

The indexes are built ``CONCURRENTLY``, outside the migration's transaction: a plain
``CREATE INDEX`` holds a SHARE lock on its table for the whole build, so the aggregator's
upserts into the trend tables (never pruned: the build grows with the history) and the
alerter's writes waited for it. A concurrent build that fails or is cancelled leaves an
INVALID index under the name, which ``IF NOT EXISTS`` would keep: it is dropped first, so
running the migration again repairs it. The migrations before this one are committed
when it starts (Alembic's autocommit block); a failed build leaves the database at 0009.

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


def _drop_invalid(name: str) -> None:
    """Drop ``name`` where a failed concurrent build left it INVALID. Offline (``--sql``)
    nothing can be read: the script drops it whatever it is, and builds it again."""
    if not op.get_context().as_sql:
        invalid = op.get_bind().scalar(
            sa.text("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": name}
        )
        if not invalid:
            return
    op.drop_index(name, if_exists=True, postgresql_concurrently=True)


def _create(name: str, table: str, columns: list[str], where: sa.TextClause | None = None) -> None:
    _drop_invalid(name)
    op.create_index(name, table, columns, if_not_exists=True, postgresql_concurrently=True, postgresql_where=where)


def _drop(name: str, table: str) -> None:
    op.drop_index(name, table_name=table, if_exists=True, postgresql_concurrently=True)


def upgrade() -> None:
    with op.get_context().autocommit_block():  # CONCURRENTLY cannot run in a transaction
        for table in TREND_TABLES:
            _create(f"ix_{table}_stream_bucket", table, ["stream", "bucket"])
        _create("ix_alerts_fired_at_id", "alerts", ["fired_at", "id"])
        _create("ix_alerts_unresolved", "alerts", ["entity", "stream"], where=sa.text("status <> 'resolved'"))


def downgrade() -> None:
    with op.get_context().autocommit_block():
        _drop("ix_alerts_unresolved", "alerts")
        _drop("ix_alerts_fired_at_id", "alerts")
        for table in reversed(TREND_TABLES):
            _drop(f"ix_{table}_stream_bucket", table)
