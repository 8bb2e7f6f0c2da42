"""Webhook delivery by channel and by claim.

``webhook_deliveries.format``: the delivery log records each attempt's channel as (url,
format), not its URL alone. A rule may send one URL in two formats (a ``json`` and a
``slack`` channel); with only the URL recorded, the deliverer could not tell which format
got through, so while one was still being retried every later pass posted the delivered
one again (same ``Idempotency-Key``: a deduping receiver dropped it, others got it twice).
Nullable with no default: the rows already there keep NULL, and so do the rows an alerter
of the previous version writes during a rolling upgrade (it does not know the column).
NULL means "this URL, format not recorded", and the deliverer reads such a row as that
version did (:func:`services.alerter.deliver.pending`): it settles the URL when the rule
sends it in one format, not when it sends it in several (both are sent again); its age
counts for every format of its URL (:func:`services.alerter.deliver.age`).

``alerts.notify_claim``: the token of the webhook claim in force. Each claim sets a new
one, a retry scheduled for later clears it, and the renewal extends a claim only while it
holds the token the renewing alerter holds: a renewal that landed just after a retry was
scheduled pushed that retry back by a whole lease. NULL: no claim held, or one made by an
alerter of the previous version, which neither sets nor reads it (its renewals go by alert
id, as before; a new alerter renews only claims holding its token, but an alerter of the
previous version that takes one over leaves the earlier token in place, so the guard holds
once every alerter is upgraded).

Both columns are added without a default: a catalogue change, no rewrite of either table.
The downgrade drops them: the previous version reads the log by URL and renews by id, as
it always did.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # IF NOT EXISTS / IF EXISTS: a database a partial build of this revision reached
    # (a development stack) is repaired by running it again, either way
    op.add_column("webhook_deliveries", sa.Column("format", sa.Text(), nullable=True), if_not_exists=True)
    op.add_column("alerts", sa.Column("notify_claim", sa.Text(), nullable=True), if_not_exists=True)


def downgrade() -> None:
    op.drop_column("alerts", "notify_claim", if_exists=True)
    op.drop_column("webhook_deliveries", "format", if_exists=True)
