"""Announce every alert status change through the outbox (``alerts.announced_status``).

Alerts already published are taken as announced in their current status, so the
upgrade does not replay history on the ``alerts`` topic.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("announced_status", sa.String(length=16), nullable=True))
    op.execute("UPDATE alerts SET announced_status = status WHERE published")
    op.create_index(
        "ix_alerts_unannounced",
        "alerts",
        ["fired_at"],
        postgresql_where=sa.text("NOT published OR announced_status IS DISTINCT FROM status"),
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_unannounced", table_name="alerts")
    op.drop_column("alerts", "announced_status")
