"""``scored_events (stream, event_time)``: the latest messages of one stream
(``GET /v1/entities/_all/messages?stream=chat`` without ``from``: ``WHERE stream = ...
ORDER BY event_time DESC LIMIT 500``). With only ``ix_scored_events_event_time`` the
planner walked the newest events of every stream to find a rare stream's, or scanned
the table (about 90 ms at a million rows); this index reads that stream's newest rows
directly, backwards.

Built ``CONCURRENTLY`` (the classifier keeps writing scored events while it runs),
outside the migration's transaction; an INVALID index a failed build left is dropped
first, so running the migration again repairs it (as 0010 and 0013).

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_scored_events_stream_event_time"
TABLE = "scored_events"


def upgrade() -> None:
    with op.get_context().autocommit_block():  # CONCURRENTLY cannot run in a transaction
        invalid = op.get_context().as_sql or op.get_bind().scalar(
            sa.text("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": INDEX}
        )
        if invalid:
            op.drop_index(INDEX, table_name=TABLE, if_exists=True, postgresql_concurrently=True)
        op.create_index(INDEX, TABLE, ["stream", "event_time"], if_not_exists=True, postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name=TABLE, if_exists=True, postgresql_concurrently=True)
