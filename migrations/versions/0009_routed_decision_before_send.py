"""The router records its decision before it sends: ``routed_events`` keeps each chat's
``priority`` and ``reason`` next to its ``queue``, and ``sent_at`` stays NULL until the
queue acknowledged the chat. A chat whose send was cut short (a crash before the mark)
is sent again on redelivery to the queue recorded here, not routed again from scratch:
a routing table, threshold or score that changed in between sent it to a second queue.

Existing rows were sent (the old router wrote them after the queue's acks): they get
this migration's time as ``sent_at`` (``now()`` is stable: PostgreSQL stores it once as
the column's value for existing rows, no table rewrite); ``priority`` and ``reason``
stay NULL (a sent row is never sent again). New rows get no default. The router's
retention deletes sent rows by ``sent_at`` (indexed).

Downgrade deletes the rows not yet sent: the old router takes any ledger row for sent,
so it would skip such a chat for good; without the row it routes it again (counted
twice at most, never lost).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("routed_events", sa.Column("priority", sa.Boolean(), nullable=True))
    op.add_column("routed_events", sa.Column("reason", sa.Text(), nullable=True))
    op.execute("ALTER TABLE routed_events ADD COLUMN sent_at timestamptz DEFAULT now()")
    op.execute("ALTER TABLE routed_events ALTER COLUMN sent_at DROP DEFAULT")
    op.create_index("ix_routed_events_sent_at", "routed_events", ["sent_at"])  # the router's retention


def downgrade() -> None:
    op.execute("DELETE FROM routed_events WHERE sent_at IS NULL")
    op.drop_index("ix_routed_events_sent_at", table_name="routed_events")
    op.drop_column("routed_events", "sent_at")
    op.drop_column("routed_events", "reason")
    op.drop_column("routed_events", "priority")
