"""The live alert feed's poller, driven with a fake database."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from services.api import alert_feed
from services.api.alert_feed import AlertFeed, AlertOut

T = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)


def _alert(alert_id: str, status: str) -> AlertOut:
    return AlertOut(
        id=alert_id,
        rule_id=1,
        rule_name="r",
        entity="acme",
        stream="news",
        status=status,
        severity="warning",
        window_start=T,
        window_end=T,
        fired_at=T,
        acknowledged_at=None,
        resolved_at=None,
        model_version="v1",
        explanation={},
    )


async def test_changes_whose_fetch_failed_are_sent_by_the_next_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    table: dict[str, str] = {"a0": "open"}
    fetches: list[list[str]] = []

    async def status_map() -> dict[str, str]:
        return dict(table)

    async def fetch(_session: Any, ids: Sequence[str]) -> list[AlertOut]:
        fetches.append(list(ids))
        if len(fetches) == 1:
            raise ConnectionRefusedError("PostgreSQL is restarting")
        return [_alert(i, table[i]) for i in ids]

    feed = AlertFeed(sessions=lambda: contextlib.nullcontext(), interval_s=3600)  # type: ignore[arg-type]
    monkeypatch.setattr(feed, "_status_map", status_map)
    monkeypatch.setattr(alert_feed, "fetch_alerts", fetch)
    async with feed.subscribe() as queue:  # baseline: a0 open
        table.update(a0="resolved", a1="open")
        with pytest.raises(ConnectionRefusedError):
            await feed.poll_once()
        assert queue.empty()
        sent = await feed.poll_once()
        assert sorted((a.id, a.status) for a in sent) == [("a0", "resolved"), ("a1", "open")]
        assert sorted((a.id, a.status) for a in (queue.get_nowait(), queue.get_nowait())) == sorted(
            (a.id, a.status) for a in sent
        )
        assert await feed.poll_once() == [] and queue.empty()  # sent once
        assert len(fetches) == 2
