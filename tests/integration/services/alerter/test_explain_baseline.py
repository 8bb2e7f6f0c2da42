"""An alert's top terms compare the window's negative messages with the baseline
period's messages: once the period holds more than the 5,000 read, a sample of the
whole period, not its 5,000 most negative messages."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from services.alerter.explain import MAX_ROWS, explain
from shared.db.models import Entity, ScoredEventRow

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)
VARIED = "mortgage lending branch savings deposits pensions insurance digital".split()


def _row(unique: str, n: int, at: datetime, text: str, sentiment: str, negative_prob: float) -> dict[str, Any]:
    return {
        "id": f"{unique}-{n}",
        "stream": "news",
        "event_time": at,
        "received_time": at,
        "entities": [unique],
        "text": text,
        "sentiment": sentiment,
        "sentiment_confidence": 0.9,
        "sentiment_score": -negative_prob,
        "negative_prob": negative_prob,
        "model_version": "v1",
    }


async def test_the_baseline_side_of_the_terms_is_the_whole_period_not_its_most_negative_messages(
    sessions: Any, unique: str
) -> None:
    base = (T0, T0 + 12 * WINDOW)
    window = (base[1], base[1] + WINDOW)
    # the period: 15,000 messages, a third about a recall (the most negative 5,000), two
    # thirds about the results, spread over the period
    rows = []
    for n in range(15_000):
        at = base[0] + (base[1] - base[0]) * n / 15_000
        if n % 3 == 0:
            rows.append(_row(unique, n, at, "carmaker recall lawsuit", "negative", 0.95))
        else:
            rows.append(_row(unique, n, at, "quarterly results margin", "negative", 0.6))
    # the window: the two topics half and half; the recall grew from a third to a half
    for n in range(40):
        text = "carmaker recall lawsuit" if n % 2 else "quarterly results margin"
        rows.append(_row(unique, 100_000 + n, window[0] + timedelta(seconds=n), text, "negative", 0.7))
    async with sessions.begin() as s:
        for i in range(0, len(rows), 5_000):
            await s.execute(insert(ScoredEventRow), rows[i : i + 5_000])
    assert 15_000 // 3 >= MAX_ROWS  # the recall alone fills the most negative MAX_ROWS

    async with sessions() as s:
        got = await explain(
            s,
            stream="news",
            entity=unique,
            version="v1",
            window=window,
            base=base,
            top_messages=5,
            top_terms=10,
        )
    terms = {t["term"]: t for t in got["top_terms"]}
    # before: the baseline read was the 5,000 recall messages, so the results looked new
    # and the recall (more common than before) was not a term at all
    assert {"recall", "lawsuit"} <= terms.keys()
    assert not {"quarterly", "results", "margin"} & terms.keys()
    # the baseline counts are the period's share: about a third of the sample
    assert 0.28 * MAX_ROWS < terms["recall"]["baseline"] < 0.39 * MAX_ROWS
    assert len(got["top_messages"]) == 5 and all(m["negative_prob"] == 0.7 for m in got["top_messages"])

    async with sessions() as s:  # the same sample on every read
        again = await explain(
            s, stream="news", entity=unique, version="v1", window=window, base=base, top_messages=5, top_terms=10
        )
    assert again["top_terms"] == got["top_terms"]


async def test_the_entitys_own_names_are_no_distinguishing_terms(sessions: Any, unique: str) -> None:
    """A reviewer's alert on a watched bank listed its own alias ("yarrowfell (6 vs 23)") among
    the terms: it is in every message of the window and of the baseline, and says nothing of
    why the alert fired. A word of its names rare in the baseline may be the story: kept."""
    key = f"YF{unique}"
    async with sessions.begin() as s:
        s.add(Entity(key=key, name="Yarrowfell Bank", aliases=["Yarrowfell Group"], tickers=["YRWF"]))
    base = (T0, T0 + 12 * WINDOW)
    window = (base[1], base[1] + WINDOW)
    rows = [
        _row(unique, n, base[0] + timedelta(minutes=5 * n), f"Yarrowfell (YRWF) {' '.join(topics)}", "neutral", 0.1)
        for n, topics in enumerate(itertools.islice(itertools.cycle(itertools.permutations(VARIED, 5)), 23))
    ]
    for n in range(6):
        text = "Yarrowfell Bank YRWF fraud" if n % 2 else "Yarrowfell fined for fraud"
        rows.append(_row(unique, 100 + n, window[0] + timedelta(minutes=n), text, "negative", 0.9))
    for r in rows:
        r["entities"] = [key]
    async with sessions.begin() as s:
        await s.execute(insert(ScoredEventRow), rows)
    async with sessions() as s:
        got = await explain(
            s, stream="news", entity=key, version="v1", window=window, base=base, top_messages=5, top_terms=10
        )
    listed = {t["term"] for t in got["top_terms"]}
    assert "fraud" in listed
    assert not {"yarrowfell", "yrwf"} & listed, got["top_terms"]
    # a word of its names that the baseline's messages do not use may be the story
    # ("Lloyds banking app outage" about Lloyds Banking Group): kept
    assert "bank" in listed
