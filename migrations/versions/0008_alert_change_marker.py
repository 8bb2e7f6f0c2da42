"""A change marker on ``alerts`` for the live feed: ``changed_xid`` is the id (``xid8``)
of the transaction that inserted the alert or last changed its status, so the feed
reads only what changed instead of the whole table every interval.

A trigger sets it on INSERT and on UPDATE, so every writer (alerter, API, CLI,
auto-resolve, plain SQL) is covered without naming the column; a value a writer
gives is overwritten. An UPDATE that leaves the status as it was (the webhook and
outbox bookkeeping: ``notified``, ``notify_claimed_at``, ``announced_status``) keeps
the marker: the feed publishes inserts and status changes only, as before.

Why a transaction id and not a timestamp or a sequence: a value is taken before its
transaction commits, so a cursor on the largest value seen misses a row whose
transaction took a smaller one and committed later. The feed instead remembers the
``xmin`` of its last poll's snapshot and reads rows with ``changed_xid >= xmin``: every
transaction that snapshot did not see has an id at/above its xmin (see
``services/api/alert_feed.py``).

Existing alerts are backfilled with this migration's transaction id (PostgreSQL keeps
it as the column's stored default for existing rows: no table rewrite).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # pg_current_xact_id() is stable: evaluated once here, stored for the existing rows.
    op.execute("ALTER TABLE alerts ADD COLUMN changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id()")
    op.execute(
        """
        CREATE FUNCTION alerts_mark_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
                NEW.changed_xid := pg_current_xact_id();
            ELSE
                NEW.changed_xid := OLD.changed_xid;
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER alerts_mark_change BEFORE INSERT OR UPDATE ON alerts "
        "FOR EACH ROW EXECUTE FUNCTION alerts_mark_change()"
    )
    op.create_index("ix_alerts_changed_xid", "alerts", ["changed_xid"])


def downgrade() -> None:
    op.drop_index("ix_alerts_changed_xid", table_name="alerts")
    op.execute("DROP TRIGGER alerts_mark_change ON alerts")
    op.execute("DROP FUNCTION alerts_mark_change()")
    op.drop_column("alerts", "changed_xid")
