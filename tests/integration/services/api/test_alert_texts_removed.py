"""An explanation whose message texts retention removed is served as stored: the
marker, the placeholder texts and everything else the alert had."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integration.services.api.helpers import insert_alert, insert_rule
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.explain import without_texts

pytestmark = pytest.mark.integration


async def test_a_stripped_explanation_is_served(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    message = {"id": "c-1", "text": "charged twice", "negative_prob": 0.97, "event_time": "2026-01-01T10:00:00+00:00"}
    e = without_texts({"share": 0.8, "z": 3.1, "top_messages": [message], "top_terms": [{"term": "charged"}]})
    aid = f"al-{unique}"
    rule_id = await insert_rule(sessions, f"rule-{unique}")
    at = datetime.now(UTC) - timedelta(days=30)
    await insert_alert(sessions, alert_id=aid, rule_id=rule_id, entity=f"e{unique}", at=at, explanation=e)
    one = await client.get(f"/v1/alerts/{aid}")
    assert one.status_code == 200, one.text
    assert one.json()["explanation"] == e
    listed = await client.get("/v1/alerts", params={"entity": f"e{unique}"})
    assert [a["explanation"] for a in listed.json()] == [e]
