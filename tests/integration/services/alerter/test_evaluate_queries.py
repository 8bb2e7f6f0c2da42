"""One evaluation pass over many keys reads the rules and the entities once, not once
per key (a sweep visits every recently updated key and every key with an open alert)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from alert_scenario import add_rule, timeline
from redis.asyncio import Redis
from sqlalchemy import event

from services.aggregator.persist import store_batch
from services.alerter.config import AlerterSettings
from services.alerter.evaluate import Evaluator
from shared.config import PostgresSettings
from shared.db.session import make_engine, make_sessionmaker

pytestmark = pytest.mark.integration


async def test_a_pass_over_many_keys_reads_rules_and_entities_once(
    service_settings: Callable[..., Any], pg_settings: PostgresSettings, sessions: Any, unique: str
) -> None:
    settings: AlerterSettings = service_settings(AlerterSettings)
    entities = [f"Q{unique}{i}" for i in range(12)]
    for e in entities:
        await add_rule(sessions, f"q-{e}", e)
    await store_batch(sessions, [ev for e in entities for ev in timeline(e, 20, [])])
    engine = make_engine(pg_settings)
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    redis = Redis.from_url(settings.redis.url.get_secret_value())
    try:
        evaluator = Evaluator(settings, make_sessionmaker(engine), redis)
        snap = await evaluator.snapshot()
        for e in entities:
            await evaluator.evaluate("news", e, "v1", snap)
    finally:
        await redis.aclose()
        await engine.dispose()
    rule_reads = [q for q in sent if "FROM alert_rules" in q and "alert_state" not in q and "FOR SHARE" not in q]
    entity_reads = [q for q in sent if "FROM entities" in q and "FOR SHARE" not in q]
    assert len(rule_reads) == 1 and len(entity_reads) == 1, (len(rule_reads), len(entity_reads))
    # per key, only the evaluated rule's own row again, locked: a change committed since the
    # pass read the rules must not fire from the pass's copy
    rechecks = [q for q in sent if "FROM alert_rules" in q and "FOR SHARE" in q]
    assert len(rechecks) >= len(entities) and all("WHERE alert_rules.id = " in q for q in rechecks), rechecks[:1]
    assert sum("FROM alert_state" in q for q in sent) >= len(entities)  # every key was evaluated
