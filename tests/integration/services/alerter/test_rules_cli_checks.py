"""``tonewatch alerts rules`` on the real database: a channel given twice is refused
(exit 2, nothing saved); a scope naming what the watchlist lacks is saved (exit 0) with a
warning on stderr, the watchlist's spelling suggested when only the case differs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select, text
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


async def test_a_rule_stored_with_a_channel_twice_lists_and_updates(
    cli: Callable[..., Awaitable[Result]], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """A rule stored listing a channel twice (by SQL, as before that was refused) lists; an
    update not setting channels succeeds (exit 0), saves it once and warns on stderr with the
    URL masked; one setting channels with a repeat is still refused (exit 2)."""
    name, off = f"legacy-dup-{unique}", f"legacy-off-{unique}"
    twice = json.dumps([{"type": "webhook", "url": HOOK, "format": "json"}] * 2)
    async with sessions.begin() as s:
        for rule_name in (name, off):
            added = await s.execute(
                text(
                    "INSERT INTO alert_rules (name, stream, scope, window_s, min_volume, abs_threshold, z_threshold, "
                    "baseline, severity, cooldown_s, resolve_after_s, channels, enabled) VALUES (:name, 'news', "
                    """'{"entities": ["_all"]}', 300, 3, 0.6, 1.5, 'ewma', 'warning', 600, 300, """
                    "CAST(:channels AS jsonb), true) RETURNING id"
                ),
                {"name": rule_name, "channels": twice},
            )
            assert added.scalar_one()

    listed = await cli("rules", "list")
    assert listed.exit_code == 0, listed.output
    assert name in listed.stdout and off in listed.stdout
    as_json = await cli("rules", "list", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert [len(r["channels"]) for r in json.loads(as_json.stdout) if r["name"] == name] == [2]

    updated = await cli("rules", "update", name, "--set", "min_volume=9")
    assert updated.exit_code == 0, updated.output  # was 2: "channel 1 repeats channel 0", not set here
    assert "updated" in updated.stdout
    assert "warning: channel 1 repeated channel 0 (https://hooks.example.com/" in updated.stderr
    assert "now lists it once" in updated.stderr and "secretpart" not in updated.output
    disabled = await cli("rules", "disable", off)
    assert disabled.exit_code == 0, disabled.output
    assert "warning: channel 1 repeated channel 0" in disabled.stderr and "secretpart" not in disabled.output
    async with sessions() as s:
        rows = (await s.execute(select(AlertRule).where(AlertRule.name.in_((name, off))))).scalars().all()
    assert {r.name: (r.min_volume, r.enabled, len(r.channels)) for r in rows} == {
        name: (9, True, 1),
        off: (3, False, 1),
    }

    again = await cli("rules", "update", name, "--set", f'channels=[{{"url": "{HOOK}"}}, {{"url": "{HOOK}"}}]')
    assert again.exit_code == 2 and "channel 1 repeats channel 0" in again.stderr
    quiet = await cli("rules", "update", name, "--set", "min_volume=10")
    assert quiet.exit_code == 0 and quiet.stderr == ""
