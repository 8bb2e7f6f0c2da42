"""Against the real database: a watchlist row whose key ends in a newline (stored while the
check let it through) still lists and can be removed by the CLI; ``tonewatch alerts list``
orders alerts fired at the same instant as ``GET /v1/alerts`` does (id descending)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from integration.services.api.helpers import insert_alert, insert_rule
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner, Result

from services.cli import alerts, entities
from shared.config import PostgresSettings
from shared.db.models import Entity

pytestmark = pytest.mark.integration
AT = datetime(2031, 5, 1, 9, 0, tzinfo=UTC)


async def test_a_stored_newline_key_lists_and_is_removed(
    sessions: async_sessionmaker[AsyncSession],
    pg_settings: PostgresSettings,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = f"nl{unique}\n"
    async with sessions.begin() as s:
        s.add(Entity(key=key, name="Newline", aliases=["Newline"], tickers=[], case_sensitive_aliases=[]))
    monkeypatch.setenv("TW_POSTGRES__URL", pg_settings.url.get_secret_value())

    def run(*args: str) -> Result:  # the command runs its own event loop: not on this one
        return CliRunner().invoke(entities.app, list(args))

    listed = await asyncio.to_thread(run, "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert key in [e["key"] for e in json.loads(listed.stdout)]
    shown = await asyncio.to_thread(run, "list")
    assert any(line.startswith(repr(key)) for line in shown.stdout.splitlines()), shown.stdout
    removed = await asyncio.to_thread(run, "remove", key)
    assert removed.exit_code == 0, removed.output
    async with sessions() as s:
        assert (await s.execute(select(Entity).where(Entity.key == key))).first() is None


async def test_alerts_list_orders_ties_by_id_like_the_api(
    sessions: async_sessionmaker[AsyncSession],
    pg_settings: PostgresSettings,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entity = f"TIE{unique}"
    ids = [f"al-{unique}-{c}" for c in "adbec"]  # inserted out of id order
    for alert_id in [*ids, f"al-{unique}-0"]:  # (rule, entity, episode) is unique: a rule each
        rule_id = await insert_rule(sessions, f"ties-{alert_id}")
        at = AT.replace(hour=10) if alert_id.endswith("-0") else AT
        await insert_alert(sessions, alert_id=alert_id, rule_id=rule_id, entity=entity, at=at)
    monkeypatch.setenv("TW_POSTGRES__URL", pg_settings.url.get_secret_value())

    def run(*args: str) -> Result:
        return CliRunner().invoke(alerts.app, list(args))

    result = await asyncio.to_thread(run, "list", "--entity", entity, "--json")
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.stdout)] == [f"al-{unique}-0", *sorted(ids, reverse=True)]
    for limit in range(1, 7):  # a limit cuts the same order
        cut = await asyncio.to_thread(run, "list", "--entity", entity, "--json", "--limit", str(limit))
        assert [r["id"] for r in json.loads(cut.stdout)] == [f"al-{unique}-0", *sorted(ids, reverse=True)][:limit]
