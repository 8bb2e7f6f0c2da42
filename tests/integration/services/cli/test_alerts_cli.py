"""``tonewatch alerts show`` against the real database: why an alert fired."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from integration.services.api.helpers import insert_alert, insert_rule
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner, Result

from services.cli.alerts import app
from shared.config import PostgresSettings

pytestmark = pytest.mark.integration
AT = datetime(2031, 3, 9, 14, 30, tzinfo=UTC)


async def test_show_explains_one_alert(
    sessions: async_sessionmaker[AsyncSession],
    pg_settings: PostgresSettings,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rule_id = await insert_rule(sessions, f"show-{unique}")
    await insert_alert(
        sessions,
        alert_id=f"al-{unique}",
        rule_id=rule_id,
        entity=f"ACME{unique}",
        at=AT,
        explanation={
            "share": 0.62,
            "volume": 50,
            "negatives": 31,
            "baseline_mean": 0.18,
            "baseline_std": 0.05,
            "baseline_windows": 12,
            "z": 8.8,
            "top_terms": [{"term": "fraud", "window": 20, "baseline": 1, "z": 5.1}],
            "top_messages": [{"id": "m1", "text": "ACME fraud probe widens", "negative_prob": 0.97}],
        },
    )
    monkeypatch.setenv("TW_POSTGRES__URL", pg_settings.url.get_secret_value())
    runner = CliRunner()

    def run(*args: str) -> Result:  # the command runs its own event loop: not on this one
        return runner.invoke(app, list(args))

    result = await asyncio.to_thread(run, "show", f"al-{unique}")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"al-{unique}  open  critical  rule {rule_id} show-{unique}" in out
    assert f"ACME{unique} (news), window 2031-03-09 14:25 -> 14:30 UTC" in out
    assert "negative share 62.0% of 50 messages (31 negative); baseline 18.0% +/- 5.0% over 12 windows; z 8.8" in out
    assert "fraud (20 vs 1)" in out and "  97.0%  ACME fraud probe widens" in out

    shown = json.loads((await asyncio.to_thread(run, "show", f"al-{unique}", "--json")).stdout)
    assert shown["rule_name"] == f"show-{unique}" and shown["explanation"]["z"] == 8.8 and shown["share"] == 0.62

    missing = await asyncio.to_thread(run, "show", "al-nope")
    assert missing.exit_code == 1 and "no alert 'al-nope'" in missing.output


async def test_rules_add_and_update_check_webhook_addresses_under_the_allowed_networks(
    pg_settings: PostgresSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI checks webhook URLs as the API does: an internal address is refused
    (exit 2) unless TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS allows its network."""
    monkeypatch.setenv("TW_POSTGRES__URL", pg_settings.url.get_secret_value())
    monkeypatch.delenv("TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS", raising=False)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args))

    name = f"hook-{unique}"
    refused = await asyncio.to_thread(
        run, "rules", "add", name, "--all-entities", "--webhook", "http://169.254.169.254/latest/"
    )
    assert refused.exit_code == 2 and "webhooks may not reach internal addresses" in refused.output
    assert "cloud metadata" in refused.output

    added = await asyncio.to_thread(
        run, "rules", "add", name, "--all-entities", "--webhook", "https://hooks.example.com/a"
    )
    assert added.exit_code == 0, added.output
    internal = '[{"type": "webhook", "url": "http://10.1.2.3/hook"}]'
    refused = await asyncio.to_thread(run, "rules", "update", name, "--set", f"channels={internal}")
    assert refused.exit_code == 2 and "10.1.2.3 (private)" in refused.output

    monkeypatch.setenv("TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS", "10.1.2.0/24")
    updated = await asyncio.to_thread(run, "rules", "update", name, "--set", f"channels={internal}")
    assert updated.exit_code == 0, updated.output
    listed = json.loads((await asyncio.to_thread(run, "rules", "list", "--json")).stdout)
    assert [r["channels"][0]["url"] for r in listed if r["name"] == name] == ["http://10.1.2.3/hook"]

    # the allowance withdrawn: the rule can still be disabled (its host is kept as it is),
    # but not pointed at another internal host
    monkeypatch.delenv("TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS")
    disabled = await asyncio.to_thread(run, "rules", "disable", name)
    assert disabled.exit_code == 0, disabled.output
    moved = '[{"type": "webhook", "url": "http://10.1.2.4/hook"}]'
    refused = await asyncio.to_thread(run, "rules", "update", name, "--set", f"channels={moved}")
    assert refused.exit_code == 2 and "10.1.2.4 (private)" in refused.output
    assert (await asyncio.to_thread(run, "rules", "delete", name)).exit_code == 0
