"""``alert_rules.covered_since``: since when the rule covers what it covers now (the
database's clock). Set when the rule is created, when it is enabled again after being
disabled, and when its stream or scope changes so that it may cover an entity it did not
(an entity or group added, a change to every entity); narrowing the scope, renaming it
or changing its thresholds, severity or channels keep it. A key's first evaluation under
the rule starts with the data stored after this time (before: after ``created_at``, so a
rule widened or re-enabled paged about spikes from before it covered the key). Existing
rules get their ``created_at``.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # now() is stable: stored once as the existing rows' value (no table rewrite), then
    # replaced by each rule's created_at
    op.execute("ALTER TABLE alert_rules ADD COLUMN covered_since timestamptz NOT NULL DEFAULT now()")
    op.execute("UPDATE alert_rules SET covered_since = created_at")


def downgrade() -> None:
    op.drop_column("alert_rules", "covered_since")
