"""Rules through the CLI on the real database: addressed by id or name without ambiguity,
and a rule that stops evaluating an alert resolves it (announced by a real alerter)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alert_scenario import add_rule, timeline
from integration.services.alerter.helpers import showing_logs
from integration.services.api.helpers import insert_rule
from redis.asyncio import Redis
from services_proc import running
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tw_testing import wait_until
from typer.testing import CliRunner, Result

from services.aggregator.persist import store_batch
from services.alerter import repo
from services.alerter.config import AlerterSettings
from services.alerter.evaluate import Evaluator
from services.cli.alerts import app
from shared.config import PostgresSettings
from shared.db.models import Alert, AlertRule
from shared.events import ScoredEvent

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(pg_settings: PostgresSettings, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``tonewatch alerts ARGS`` on the test database, off this event loop (it runs its own)."""
    monkeypatch.setenv("TW_POSTGRES__URL", pg_settings.url.get_secret_value())
    runner = CliRunner()

    async def run(*args: str) -> Result:
        return await asyncio.to_thread(runner.invoke, app, list(args))

    return run


async def _rules(sessions: async_sessionmaker[AsyncSession], *ids: int) -> dict[int, bool]:
    """Which of these rules exist, and whether each is enabled."""
    async with sessions() as s:
        rows = await s.execute(select(AlertRule.id, AlertRule.enabled).where(AlertRule.id.in_(ids)))
        return {i: e for i, e in rows.all()}


async def test_a_number_is_a_rule_id_and_an_ambiguous_one_is_refused(
    sessions: async_sessionmaker[AsyncSession], cli: Callable[..., Any], unique: str
) -> None:
    """``rules add 1`` was accepted; ``rules disable 1`` / ``delete 1`` then acted on rule
    id 1 (the shipped stream-negative-surge). All-digit names are refused, and a number
    that is also a rule's name (one stored before) is refused, not guessed."""
    added = await cli("rules", "add", "1", "--entity", f"NUM{unique}")
    assert added.exit_code == 2 and "cannot be all digits" in added.output, added.output
    async with sessions() as s:
        assert (await s.execute(select(AlertRule.id).where(AlertRule.name == "1"))).scalar() is None

    target = await add_rule(sessions, f"target-{unique}", f"TGT{unique}")
    legacy = await insert_rule(sessions, f"legacy-{unique}")
    async with sessions.begin() as s:  # as stored before all-digit names were refused
        await s.execute(update(AlertRule).where(AlertRule.id == legacy).values(name=str(target)))
    for args in (
        ("rules", "disable"),
        ("rules", "delete"),
        ("backtest", "--from", "2026-03-02", "--to", "2026-03-03", "--rule"),
    ):
        refused = await cli(*args, str(target))
        assert refused.exit_code == 2, refused.output
        assert f"'{target}' is ambiguous: it is a rule id and the name of rule {legacy}" in refused.output
    assert await _rules(sessions, target, legacy) == {target: True, legacy: True}

    # a name of digits that is no rule's id is refused too, never taken for the rule so named
    digits = str(int(unique, 16))
    async with sessions.begin() as s:
        await s.execute(update(AlertRule).where(AlertRule.id == legacy).values(name=digits))
    refused = await cli("rules", "delete", digits)
    assert refused.exit_code == 2 and "ambiguous" in refused.output, refused.output

    renamed = await cli("rules", "update", str(legacy), "--set", f"name=renamed-{unique}")
    assert renamed.exit_code == 0, renamed.output
    disabled = await cli("rules", "disable", str(target))
    assert disabled.exit_code == 0 and f"rule {target} target-{unique} disabled" in disabled.output
    assert await _rules(sessions, target, legacy) == {target: False, legacy: True}

    unknown = await cli("rules", "disable", "²")  # a digit to str.isdigit, not to int()
    assert unknown.exit_code == 1 and "no rule '²'" in unknown.output, unknown.output


async def _statuses(sessions: async_sessionmaker[AsyncSession], rule_id: int) -> list[tuple[str, str | None]]:
    async with sessions() as s:
        rows = await s.execute(select(Alert.status, Alert.announced_status).where(Alert.rule_id == rule_id))
        return [(a, b) for a, b in rows.all()]


async def _are(sessions: async_sessionmaker[AsyncSession], rule_id: int, status: str) -> bool:
    """The rule's one alert has ``status``, and the alerts topic has heard it."""
    return await _statuses(sessions, rule_id) == [(status, status)]


async def test_disabling_or_narrowing_a_rule_resolves_its_open_alert_and_the_topic_hears_it(
    service_settings: Callable[..., Any],
    sessions: async_sessionmaker[AsyncSession],
    cli: Callable[..., Any],
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """Two spikes last to the end of their data, so each alert stays open. One rule is
    disabled, the other's scope moved to another entity (CLI; the API takes the same
    path): both alerts resolve at once and the alerter announces ``resolved`` on the
    alerts topic. Before, they stayed open for ever (the alerter evaluates only enabled
    rules over their scope) and the sweep visited their keys at every pass."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    paused, moved = f"PAUSE{unique}", f"MOVE{unique}"
    rules = {e: await add_rule(sessions, f"{e.lower()}-rule", e) for e in (paused, moved)}
    with running("alerter", settings, tmp_path, **alerter_env(unique)):
        for entity in (paused, moved):
            await store_batch(sessions, timeline(entity, 70, [(60, 70)]))
        with showing_logs(tmp_path, "alerter"):
            for rule_id in rules.values():
                await wait_until(lambda r=rule_id: _are(sessions, r, "open"), timeout=60)
        refused = await cli("rules", "delete", f"{paused.lower()}-rule")
        assert refused.exit_code == 1 and "1 open alert(s): disable it first" in refused.output, refused.output

        disabled = await cli("rules", "disable", f"{paused.lower()}-rule")
        assert disabled.exit_code == 0, disabled.output
        assert "1 open alert(s) it no longer evaluates resolved" in disabled.output
        narrowed = await cli("rules", "update", str(rules[moved]), "--set", f'scope={{"entities": ["X{unique}"]}}')
        assert narrowed.exit_code == 0 and "1 open alert(s)" in narrowed.output, narrowed.output
        with showing_logs(tmp_path, "alerter"):
            for rule_id in rules.values():
                await wait_until(lambda r=rule_id: _are(sessions, r, "resolved"), timeout=15)
    deleted = await cli("rules", "delete", f"{paused.lower()}-rule")
    assert deleted.exit_code == 0, deleted.output
    assert await _rules(sessions, *rules.values()) == {rules[moved]: True}


def _later(events: list[ScoredEvent], minutes: int) -> list[ScoredEvent]:
    return [
        e.model_copy(update={"id": f"{e.id}+{minutes}", "event_time": e.event_time + timedelta(minutes=minutes)})
        for e in events
    ]


async def test_a_rule_enabled_again_fires_afresh(
    service_settings: Callable[..., Any], sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """Disabling resolves the open alert and clears it from the detector state: enabled
    again while the spike goes on, the rule fires a new alert, instead of keeping an
    alert the table says is resolved open in its state (and never firing). (A median
    baseline, so the half-hour spike still stands out when the rule is back.)"""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"AGAIN{unique}"
    rule_id = await add_rule(sessions, f"again-{unique}", entity, cooldown_s=0, baseline="mad")
    redis = Redis.from_url(settings.redis.url.get_secret_value())
    evaluator = Evaluator(settings, sessions, redis)
    try:
        await store_batch(sessions, timeline(entity, 70, [(60, 70)]))
        await evaluator.evaluate("news", entity, "v1")
        (first,) = await _statuses(sessions, rule_id)
        assert first[0] == "open"
        async with sessions.begin() as s:
            changed = await repo.update_rule(s, str(rule_id), {"enabled": False})
        assert len(changed.resolved) == 1
        await store_batch(sessions, _later(timeline(entity, 10, [(0, 10)]), 70))
        await evaluator.evaluate("news", entity, "v1")  # disabled: nothing happens
        assert [s for s, _ in await _statuses(sessions, rule_id)] == ["resolved"]
        async with sessions.begin() as s:
            await repo.update_rule(s, rule_id, {"enabled": True})
        await store_batch(sessions, _later(timeline(entity, 5, [(0, 5)]), 80))
        await evaluator.evaluate("news", entity, "v1")
    finally:
        await redis.aclose()
    async with sessions() as s:
        alerts = (await s.execute(select(Alert).where(Alert.rule_id == rule_id).order_by(Alert.fired_at))).scalars()
        assert [(a.id == changed.resolved[0], a.status) for a in alerts] == [(True, "resolved"), (False, "open")]
