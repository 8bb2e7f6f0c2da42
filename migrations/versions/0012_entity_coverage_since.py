"""``entities.watched_since`` and ``entities.group_since``: since when an entity is on
the watchlist (set when it is added, or made active again) and in its current group (set
when it is added and whenever its group changes), on the database's clock. Rules scoped
to a group or to every entity cover the watchlist's entities, so these say since when
such a rule covers an entity (with the rule's ``covered_since``): a key's first
evaluation, or its first after the entity came back, starts with the data stored after
that (before: after ``covered_since`` alone, however long ago, or from the key's old
cursor, so an entity added or moved in paged about spikes from before it was covered).
Existing rows get their ``created_at``.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # now() is stable: stored once as the existing rows' value (no table rewrite), then
    # replaced by each entity's created_at
    op.execute(
        "ALTER TABLE entities ADD COLUMN watched_since timestamptz NOT NULL DEFAULT now(), "
        "ADD COLUMN group_since timestamptz NOT NULL DEFAULT now()"
    )
    op.execute("UPDATE entities SET watched_since = created_at, group_since = created_at")


def downgrade() -> None:
    op.drop_column("entities", "group_since")
    op.drop_column("entities", "watched_since")
