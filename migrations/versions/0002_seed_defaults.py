"""Seed the default routing table and alert rules.

Revision ID: 0002
Revises: 0001
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.alerter.rules import DEFAULT_RULES
from services.router.policy import DEFAULT_ROUTES

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None



class _Jsonb(sa.types.TypeDecorator[Any]):
    """JSONB that an offline script (``alembic upgrade --sql``) can also write as a literal."""

    impl = postgresql.JSONB
    cache_ok = True

    def process_literal_param(self, value: Any, dialect: sa.engine.Dialect) -> str:
        return "'" + json.dumps(value).replace("'", "''") + "'::jsonb"


routing = sa.table("routing_rules", sa.column("intent", sa.String), sa.column("queue", sa.String))
rules = sa.table(
    "alert_rules",
    sa.column("name", sa.String),
    sa.column("stream", sa.String),
    sa.column("scope", _Jsonb),
    sa.column("window_s", sa.Integer),
    sa.column("min_volume", sa.Integer),
    sa.column("abs_threshold", sa.Float),
    sa.column("z_threshold", sa.Float),
    sa.column("baseline", sa.String),
    sa.column("severity", sa.String),
    sa.column("cooldown_s", sa.Integer),
    sa.column("resolve_after_s", sa.Integer),
    sa.column("channels", _Jsonb),
    sa.column("enabled", sa.Boolean),
)


def upgrade() -> None:
    op.bulk_insert(routing, [{"intent": i, "queue": q} for i, q in DEFAULT_ROUTES.items()])
    op.bulk_insert(rules, [r.model_dump(mode="json", exclude_none=True) for r in DEFAULT_RULES])


def downgrade() -> None:
    names = [r.name for r in DEFAULT_RULES]
    op.execute(rules.delete().where(rules.c.name.in_(names)))
    op.execute(routing.delete())
