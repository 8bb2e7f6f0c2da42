"""``tonewatch alerts rules`` on the real database: a channel given twice is refused
(exit 2, nothing saved); a scope naming what the watchlist lacks is saved (exit 0) with a
warning on stderr, the watchlist's spelling suggested when only the case differs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner, Result

from services.cli.alerts import app
from shared.config import PostgresSettings
from shared.db import watchlist
from shared.db.models import AlertRule
from shared.entities import WatchedEntity

pytestmark = pytest.mark.integration
HOOK = "https://hooks.example.com/services/T1/B1/secretpart"


@pytest.fixture
def cli(pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Awaitable[Result]]:
    """``tonewatch alerts ARGS`` on the test database, off this event loop (it runs its own)."""
    monkeypatch.setenv("TW_POSTGRES__URL", pg_settings.url.get_secret_value())
    runner = CliRunner()

    async def run(*args: str) -> Result:
        return await asyncio.to_thread(runner.invoke, app, list(args))

    return run


async def _exists(sessions: async_sessionmaker[AsyncSession], name: str) -> bool:
    async with sessions() as s:
        return (await s.execute(select(AlertRule.id).where(AlertRule.name == name))).first() is not None


async def test_a_webhook_given_twice_is_refused(
    cli: Callable[..., Awaitable[Result]], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    name = f"twice-{unique}"
    refused = await cli("rules", "add", name, "--all-entities", "--webhook", HOOK, "--webhook", HOOK)
    assert refused.exit_code == 2, refused.output
    assert "channel 1 repeats channel 0" in refused.stderr and "secretpart" not in refused.stderr
    assert not await _exists(sessions, name)
    added = await cli("rules", "add", name, "--all-entities", "--webhook", HOOK, "--webhook", f"slack:{HOOK}")
    assert added.exit_code == 0, added.output  # one URL in two formats: two channels
    again = await cli("rules", "update", name, "--set", f'channels=[{{"url": "{HOOK}"}}, {{"url": "{HOOK}"}}]')
    assert again.exit_code == 2 and "channel 1 repeats channel 0" in again.stderr


async def test_a_scope_off_the_watchlist_is_saved_with_a_warning(
    cli: Callable[..., Awaitable[Result]], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    key, group = f"ACME{unique}".upper(), f"Banks{unique}"
    await watchlist.upsert(sessions, [WatchedEntity(key=key, name="Acme Corp", group=group)])

    lower = await cli("rules", "add", f"lower-{unique}", "--entity", key.lower())
    assert lower.exit_code == 0, lower.output
    assert lower.stdout.startswith("rule ") and "added" in lower.stdout
    assert f"warning: scope entity '{key.lower()}' is not on the watchlist; did you mean '{key}'?" in lower.stderr
    assert await _exists(sessions, f"lower-{unique}")

    grouped = await cli("rules", "add", f"group-{unique}", "--group", group.upper())
    assert grouped.exit_code == 0, grouped.output
    assert f"warning: scope group '{group.upper()}' is not the group" in grouped.stderr
    assert f"did you mean '{group}'?" in grouped.stderr

    fixed = await cli("rules", "update", f"lower-{unique}", "--set", f'scope={{"entities": ["{key}"]}}')
    assert fixed.exit_code == 0, fixed.output
    assert "warning" not in fixed.stderr
    moved = await cli("rules", "update", f"group-{unique}", "--set", 'scope={"group": "nobody-has-this"}')
    assert moved.exit_code == 0 and "warning: scope group 'nobody-has-this'" in moved.stderr

    right = await cli("rules", "add", f"right-{unique}", "--entity", key, "--entity", "_all")
    assert right.exit_code == 0 and right.stderr == ""
