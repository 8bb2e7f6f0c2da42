"""Webhooks no longer wait for the ``alerts`` topic: ``alerts.published`` becomes
``alerts.notified`` (the firing was handed to the webhook deliverer).

``published`` meant "the open event was produced and the webhooks were handed over",
which was one step. Now a firing is notified first and produced on its own, so the
topic's progress is ``announced_status`` alone (NULL: the open event is still to be
produced). Existing rows keep their meaning: an alert that was published was notified.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_alerts_unannounced", table_name="alerts")
    op.alter_column("alerts", "published", new_column_name="notified")
    op.create_index(
        "ix_alerts_unannounced",
        "alerts",
        ["fired_at"],
        postgresql_where=sa.text("NOT notified OR announced_status IS DISTINCT FROM status"),
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_unannounced", table_name="alerts")
    op.alter_column("alerts", "notified", new_column_name="published")
    # the older code produces the open event and notifies in one step, keyed on published:
    # an alert notified here whose open event is still pending is taken as published
    # (its topic event is then not produced) rather than notified a second time
    op.create_index(
        "ix_alerts_unannounced",
        "alerts",
        ["fired_at"],
        postgresql_where=sa.text("NOT published OR announced_status IS DISTINCT FROM status"),
    )
