"""Alembic upgrade, downgrade, upgrade on real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.config import PostgresSettings
from shared.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.integration
# Each test migrates a new database of its own: the `scratch` fixture (conftest.py).


async def _exec(sql: str, url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def _drift(settings: PostgresSettings) -> list[object]:
    """What Alembic's autogenerate would still change: models vs the migrated schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db.models import Base

    engine = create_async_engine(settings.url.get_secret_value())
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
    finally:
        await engine.dispose()


def _tables(url: str) -> set[str]:
    rows = asyncio.run(_exec("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", url))
    return {r["tablename"] for r in rows}


def test_upgrade_downgrade_upgrade(scratch: tuple[PostgresSettings, str]) -> None:
    settings, url = scratch
    upgrade(settings)
    tables = _tables(url)
    assert {
        "entities",
        "trend_minute",
        "trend_hour",
        "scored_events",
        "counted_events",
        "alerts",
        "alert_rules",
        "routing_rules",
        "api_keys",
    } <= tables
    rules = asyncio.run(_exec("SELECT count(*) AS n FROM routing_rules", url))
    assert rules[0]["n"] == 21
    assert asyncio.run(_drift(settings)) == []  # the migrations build exactly what the models declare
    downgrade(settings, "base")
    assert _tables(url) == {"alembic_version"}
    upgrade(settings)
    assert tables == _tables(url)


def test_0007_keys_the_ledger_and_scored_events_by_id_and_stream_keeping_rows(
    scratch: tuple[PostgresSettings, str],
) -> None:
    settings, url = scratch

    def scored_row(event_id: str, stream: str) -> str:
        return (
            "INSERT INTO scored_events (id, stream, event_time, received_time, entities, text, sentiment, "
            "sentiment_confidence, sentiment_score, negative_prob, model_version) VALUES "
            f"('{event_id}', '{stream}', now(), now(), ARRAY['_all'], 't', 'neutral', 0.8, 0, 0.1, 'v1')"
        )

    def ledger() -> set[tuple[str, ...]]:
        rows = asyncio.run(_exec("SELECT * FROM counted_events", url))
        return {(r["id"], r["stream"]) if "stream" in r else (r["id"],) for r in rows}

    upgrade(settings, "0006")
    asyncio.run(_exec("INSERT INTO counted_events (id) VALUES ('a'), ('b'), ('c')", url))
    asyncio.run(_exec(scored_row("a", "news"), url))
    asyncio.run(_exec(scored_row("b", "chat"), url))
    upgrade(settings)
    # a ledger id takes its scored event's stream; one whose scored event expired is kept for both
    assert ledger() == {("a", "news"), ("b", "chat"), ("c", "news"), ("c", "chat")}
    asyncio.run(_exec("INSERT INTO counted_events (id, stream) VALUES ('a', 'chat')", url))
    asyncio.run(_exec(scored_row("a", "chat"), url))  # the same id in the other stream fits
    downgrade(settings, "0006")
    assert ledger() == {("a",), ("b",), ("c",)}
    scored = asyncio.run(_exec("SELECT id, stream FROM scored_events ORDER BY id", url))
    assert [(r["id"], r["stream"]) for r in scored] == [("a", "news"), ("b", "chat")]
    upgrade(settings)
    assert ledger() == {("a", "news"), ("b", "chat"), ("c", "news"), ("c", "chat")}


def test_0008_marks_alert_changes_by_transaction_keeping_and_backfilling_alerts(
    scratch: tuple[PostgresSettings, str],
) -> None:
    settings, url = scratch

    def alert_row(alert_id: str, status: str) -> str:
        return (
            "INSERT INTO alerts (id, rule_id, entity, stream, episode, status, severity, window_start, window_end, "
            "fired_at, explanation, model_version) VALUES "
            f"('{alert_id}', (SELECT id FROM alert_rules WHERE name = 'mig-0008'), 'acme', 'news', "
            f"'2027-01-0{len(alert_id)}', '{status}', 'warning', '2027-01-01', '2027-01-01', '2027-01-01', "
            "'{}', 'v1')"
        )

    def alerts() -> dict[str, tuple[str, int | None]]:
        rows = asyncio.run(_exec("SELECT * FROM alerts", url))
        return {r["id"]: (r["status"], r.get("changed_xid")) for r in rows}

    def schema() -> tuple[bool, bool, bool, bool]:
        """(column, trigger, function, index) exist."""
        (row,) = asyncio.run(
            _exec(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'alerts' "
                "AND column_name = 'changed_xid') AS c, "
                "EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'alerts_mark_change') AS t, "
                "EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'alerts_mark_change') AS f, "
                "EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'ix_alerts_changed_xid') AS i",
                url,
            )
        )
        return row["c"], row["t"], row["f"], row["i"]

    upgrade(settings, "0007")
    asyncio.run(
        _exec(
            "INSERT INTO alert_rules (name, stream, scope, window_s, min_volume, abs_threshold, z_threshold, "
            "baseline, severity, cooldown_s, resolve_after_s, channels) "
            "VALUES ('mig-0008', 'news', '{}', 300, 1, 0.5, 1, 'ewma', 'warning', 60, 60, '[]')",
            url,
        )
    )
    for alert_id, status in (("a", "open"), ("bb", "resolved")):
        asyncio.run(_exec(alert_row(alert_id, status), url))
    assert schema() == (False, False, False, False)

    upgrade(settings)
    assert schema() == (True, True, True, True)
    backfilled = alerts()
    assert {i: s for i, (s, _) in backfilled.items()} == {"a": "open", "bb": "resolved"}  # kept
    marks = {x for _, x in backfilled.values()}
    assert len(marks) == 1 and None not in marks  # the migration's transaction
    (mark,) = marks
    asyncio.run(_exec("UPDATE alerts SET notified = true WHERE id = 'a'", url))  # not a status change
    assert alerts()["a"] == ("open", mark)
    asyncio.run(_exec("UPDATE alerts SET status = 'acknowledged' WHERE id = 'a'", url))
    asyncio.run(_exec(alert_row("ccc", "open"), url))
    after = alerts()
    assert after["a"][0] == "acknowledged" and after["a"][1] is not None and after["a"][1] > mark
    assert after["ccc"][1] is not None and after["ccc"][1] > after["a"][1]
    assert after["bb"] == ("resolved", mark)

    downgrade(settings, "0007")
    assert schema() == (False, False, False, False)
    assert alerts() == {"a": ("acknowledged", None), "bb": ("resolved", None), "ccc": ("open", None)}
    asyncio.run(_exec("UPDATE alerts SET status = 'resolved' WHERE id = 'a'", url))  # no trigger left
    upgrade(settings)
    assert schema() == (True, True, True, True)
    assert {i: s for i, (s, x) in alerts().items() if x is not None} == {
        "a": "resolved",
        "bb": "resolved",
        "ccc": "open",
    }
