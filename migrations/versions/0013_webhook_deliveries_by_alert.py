"""``webhook_deliveries (alert_id)``: the deliverer reads an alert's attempts (the channels
already delivered or refused for good) before it sends, for every alert, a takeover and a
restart; without an index that read scanned the whole delivery log, which is never pruned,
under the delivery's 5 s database limit.

Built ``CONCURRENTLY`` (the alerter keeps writing attempts while it runs), outside the
migration's transaction; an INVALID index a failed build left is dropped first, so running
the migration again repairs it (as 0010).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_webhook_deliveries_alert_id"
TABLE = "webhook_deliveries"


def upgrade() -> None:
    with op.get_context().autocommit_block():  # CONCURRENTLY cannot run in a transaction
        invalid = op.get_context().as_sql or op.get_bind().scalar(
            sa.text("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": INDEX}
        )
        if invalid:
            op.drop_index(INDEX, table_name=TABLE, if_exists=True, postgresql_concurrently=True)
        op.create_index(INDEX, TABLE, ["alert_id"], if_not_exists=True, postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name=TABLE, if_exists=True, postgresql_concurrently=True)
