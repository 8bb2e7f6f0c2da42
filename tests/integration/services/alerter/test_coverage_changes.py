"""A rule's coverage changing under the alerter, on the real database, Redis and Kafka: a
pass that read the rules (and groups) before a rule was disabled, deleted or re-scoped, or
before its entity left the rule's group, fires nothing from that copy; and an open alert
whose entity leaves the rule's group (or the watchlist) is resolved and announced."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from alert_scenario import add_rule, timeline
from integration.services.alerter.helpers import showing_logs
from services_proc import running
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tw_testing import topic_records, wait_until
from typer.testing import CliRunner

from services.aggregator.persist import store_batch
from services.alerter import repo
from services.alerter.config import AlerterSettings
from services.alerter.evaluate import Evaluator
from services.alerter.rules import Scope
from services.cli.entities import app as entities_cli
from shared.config import PostgresSettings
from shared.db import watchlist
from shared.db.models import Alert, AlertState
from shared.entities import WatchedEntity

pytestmark = pytest.mark.integration
Sessions = async_sessionmaker[AsyncSession]
# evaluator (conftest.py): the alerter's evaluator, run by the test itself


async def watch(sessions: Sessions, entity: str, group: str | None) -> None:
    await watchlist.upsert(sessions, [WatchedEntity(entity, entity.title(), group=group)])


async def alerts_of(sessions: Sessions, rule_id: int) -> dict[str, tuple[str, str | None]]:
    """entity -> (status, announced status) of the rule's alerts."""
    async with sessions() as s:
        rows = await s.execute(
            select(Alert.entity, Alert.status, Alert.announced_status).where(Alert.rule_id == rule_id)
        )
        return {e: (status, announced) for e, status, announced in rows.tuples()}


async def open_claims(sessions: Sessions, rule_id: int) -> dict[str, str | None]:
    """entity -> the alert its detector state says is open."""
    async with sessions() as s:
        rows = await s.execute(select(AlertState.entity, AlertState.state).where(AlertState.rule_id == rule_id))
        return {e: state.get("open_alert") for e, state in rows.tuples()}


async def _disable(sessions: Sessions, rule_id: int, entity: str) -> None:
    async with sessions.begin() as s:
        await repo.update_rule(s, rule_id, {"enabled": False})


async def _rescope(sessions: Sessions, rule_id: int, entity: str) -> None:
    async with sessions.begin() as s:
        await repo.update_rule(s, rule_id, {"scope": {"entities": [f"{entity}X"]}})


async def _delete(sessions: Sessions, rule_id: int, entity: str) -> None:
    async with sessions.begin() as s:
        await repo.delete_rule(s, rule_id)


async def _leave_group(sessions: Sessions, rule_id: int, entity: str) -> None:
    await watch(sessions, entity, "elsewhere")


async def _unwatch(sessions: Sessions, rule_id: int, entity: str) -> None:
    assert await watchlist.remove(sessions, entity)


Change = Callable[[Sessions, int, str], Awaitable[None]]


@pytest.mark.parametrize(
    ("change", "by_group"),
    [
        (_disable, False),
        (_rescope, False),
        (_delete, False),
        (_leave_group, True),
        (_unwatch, True),
        (_disable, True),
    ],
    ids=["disabled", "rescoped", "deleted", "entity-left-group", "entity-removed", "group-rule-disabled"],
)
async def test_a_pass_that_read_the_rule_before_it_changed_fires_nothing_from_that_copy(
    sessions: Sessions, evaluator: Evaluator, unique: str, change: Change, by_group: bool
) -> None:
    """The pass reads the enabled rules and the entities' groups, then the rule changes
    (committed), then the pass evaluates the entity with what it read. Before, the old
    copy fired an open alert for a rule that was disabled (or no longer covered the
    entity), which nothing would ever resolve; a deleted rule failed the whole pass
    (the detector state's foreign key)."""
    entity, group = f"RACE{unique}", f"g{unique}"
    scope = Scope(group=group) if by_group else Scope(entities=[entity])
    await watch(sessions, entity, group)
    rule_id = await add_rule(sessions, f"race-{unique}", entity, scope=scope)
    await store_batch(sessions, timeline(entity, 70, [(60, 70)]))
    snap = await evaluator.snapshot()
    assert rule_id in {r.id for r in snap.rules}

    await change(sessions, rule_id, entity)
    fired = await evaluator.evaluate("news", entity, "v1", snap)

    assert [c for c in fired if c.rule.id == rule_id] == []
    assert await alerts_of(sessions, rule_id) == {}


async def test_a_pass_evaluates_the_rule_as_committed_when_it_still_covers_the_entity(
    sessions: Sessions, evaluator: Evaluator, unique: str
) -> None:
    """A change that keeps the entity covered (here the severity) counts from the
    evaluation after it commits, not from the pass after: the alert is critical."""
    entity = f"SEV{unique}"
    rule_id = await add_rule(sessions, f"sev-{unique}", entity)
    await store_batch(sessions, timeline(entity, 70, [(60, 70)]))
    snap = await evaluator.snapshot()
    async with sessions.begin() as s:
        await repo.update_rule(s, rule_id, {"severity": "critical"})

    fired = [c for c in await evaluator.evaluate("news", entity, "v1", snap) if c.rule.id == rule_id]

    assert [(c.kind, c.rule.severity) for c in fired] == [("fire", "critical")]
    async with sessions() as s:
        severity = (await s.execute(select(Alert.severity).where(Alert.rule_id == rule_id))).scalar_one()
    assert severity == "critical"


async def test_alerts_whose_entity_left_the_rule_group_are_resolved_and_their_state_cleared(
    sessions: Sessions, evaluator: Evaluator, unique: str
) -> None:
    """Three entities of a group alert under the group's rule; one moves to another
    group, one leaves the watchlist. Before, their alerts stayed open for good (nothing
    evaluates an entity its rule no longer covers); now the check the alerter's sweep
    runs resolves those two, and clears them from the detector states, so the rule fires
    afresh if the entity comes back. The third stays open."""
    group = f"grp{unique}"
    moved, removed, stays = (f"{name}{unique}" for name in ("MOVED", "GONE", "STAYS"))
    for entity in (moved, removed, stays):
        await watch(sessions, entity, group)
    rule_id = await add_rule(sessions, f"group-{unique}", moved, scope=Scope(group=group))
    for entity in (moved, removed, stays):
        await store_batch(sessions, timeline(entity, 70, [(60, 70)]))
        await evaluator.evaluate("news", entity, "v1")
    assert {e: s for e, (s, _) in (await alerts_of(sessions, rule_id)).items()} == dict.fromkeys(
        (moved, removed, stays), "open"
    )

    await watch(sessions, moved, f"other{unique}")
    assert await watchlist.remove(sessions, removed)
    resolved = await repo.resolve_uncovered(sessions)

    statuses = {e: s for e, (s, _) in (await alerts_of(sessions, rule_id)).items()}
    assert statuses == {moved: "resolved", removed: "resolved", stays: "open"}
    async with sessions() as s:
        ids = (await s.execute(select(Alert.entity, Alert.id).where(Alert.rule_id == rule_id))).tuples().all()
    assert {i for e, i in ids if e != stays} <= set(resolved)
    claims = await open_claims(sessions, rule_id)
    assert (claims[moved], claims[removed]) == (None, None) and claims[stays] is not None
    # and their last evaluated minute: covered again, they start afresh, never walk on from
    # before they left (the state saved here is newer than a return racing with the sweep)
    async with sessions() as s:
        rows = await s.execute(select(AlertState.entity, AlertState.state).where(AlertState.rule_id == rule_id))
        cursors = {e: state.get("last_eval") for e, state in rows.tuples()}
    assert (cursors[moved], cursors[removed]) == (None, None) and cursors[stays] is not None
    assert not set(await repo.resolve_uncovered(sessions)) & {i for _, i in ids}  # nothing twice

    await _disable(sessions, rule_id, stays)  # leave no open alert behind for the other tests


async def test_the_alerter_resolves_and_announces_alerts_whose_entity_left_the_group(
    service_settings: Callable[..., Any],
    sessions: Sessions,
    pg_settings: PostgresSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """End to end with a real alerter: two entities of a group alert under the group's
    rule; ``tonewatch entities add`` moves one out of the group and ``entities remove``
    removes the other, which empties the group. Within a sweep both alerts are resolved,
    and the alerts topic hears ``resolved`` for each."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    monkeypatch.setenv("TW_POSTGRES__URL", pg_settings.url.get_secret_value())
    group = f"team{unique}"
    moved, removed = f"OUT{unique}", f"DEL{unique}"
    for entity in (moved, removed):
        await watch(sessions, entity, group)
    rule_id = await add_rule(sessions, f"team-{unique}", moved, scope=Scope(group=group))
    runner = CliRunner()
    with running("alerter", settings, tmp_path, **alerter_env(unique)):
        for entity in (moved, removed):
            await store_batch(sessions, timeline(entity, 70, [(60, 70)]))
        opened = dict.fromkeys((moved, removed), ("open", "open"))
        with showing_logs(tmp_path, "alerter"):
            await wait_until(lambda: _is(sessions, rule_id, opened), timeout=60)
            out = await asyncio.to_thread(runner.invoke, entities_cli, ["add", moved, "--name", "Moved"])
            assert out.exit_code == 0, out.output
            out = await asyncio.to_thread(runner.invoke, entities_cli, ["remove", removed])
            assert out.exit_code == 0, out.output
            closed = dict.fromkeys((moved, removed), ("resolved", "resolved"))
            await wait_until(lambda: _is(sessions, rule_id, closed), timeout=30)
    heard = [json.loads(r.value) for r in await topic_records(settings, settings.topics.alerts)]
    mine = sorted((e["entity"], e["status"]) for e in heard if e["rule_id"] == rule_id)
    assert mine == sorted((e, s) for e in (moved, removed) for s in ("open", "resolved"))


async def _is(sessions: Sessions, rule_id: int, expected: Mapping[str, tuple[str, str | None]]) -> bool:
    return await alerts_of(sessions, rule_id) == expected
