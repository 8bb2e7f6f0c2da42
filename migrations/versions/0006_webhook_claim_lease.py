"""Webhooks survive a restart: ``alerts.notify_claimed_at`` is when an alerter took the
firing's webhooks on. ``notified`` now means every channel is done (delivered, or its
attempts used up); a claim older than the lease, on an alert not notified, is taken
over by the next pass (of this alerter after a restart, or of another one), which skips
the channels already delivered. Existing notified alerts stay notified.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("notify_claimed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("alerts", "notify_claimed_at")
