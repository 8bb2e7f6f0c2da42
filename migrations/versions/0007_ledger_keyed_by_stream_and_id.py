"""Event ids are unique within a stream only: ``counted_events`` and ``scored_events`` are
keyed by (id, stream), so a news and a chat event with the same id (two files that both
number their rows 1..N) are both counted and both kept for drill-down. Before, the
second stream's event was dropped by the ledger.

Existing ledger rows are kept: a row gets the stream of its ``scored_events`` row (the
two were written in one transaction); one whose scored event has expired could be of
either stream, so it is kept for both (such an id stays counted once, as before).

Downgrade keys both tables by id again: of ids present in both streams, the news row
is kept (as the old schema can hold only one).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("counted_events", sa.Column("stream", sa.String(length=8), nullable=True))
    op.execute("UPDATE counted_events c SET stream = s.stream FROM scored_events s WHERE s.id = c.id")
    op.drop_constraint("counted_events_pkey", "counted_events", type_="primary")
    op.execute(
        "INSERT INTO counted_events (id, stream, counted_at) "
        "SELECT id, 'chat', counted_at FROM counted_events WHERE stream IS NULL"
    )
    op.execute("UPDATE counted_events SET stream = 'news' WHERE stream IS NULL")
    op.alter_column("counted_events", "stream", nullable=False)
    op.create_primary_key("counted_events_pkey", "counted_events", ["id", "stream"])

    op.drop_constraint("scored_events_pkey", "scored_events", type_="primary")
    op.create_primary_key("scored_events_pkey", "scored_events", ["id", "stream"])


def downgrade() -> None:
    for table in ("scored_events", "counted_events"):
        op.execute(
            f"DELETE FROM {table} t WHERE t.stream = 'chat' "
            f"AND EXISTS (SELECT 1 FROM {table} o WHERE o.id = t.id AND o.stream = 'news')"
        )
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, ["id"])
    op.drop_column("counted_events", "stream")
