"""Seed data for the browser tests: two days of hourly trends for a small watchlist,
alerts with explanations, messages and routing volumes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from integration.services.api.helpers import insert_alert, insert_rule
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.models import Alert, AlertRule, Entity, RoutingMinute, ScoredEventRow, TrendHour, TrendMinute
from shared.inference.registry import Registry
from shared.labels import TASKS

REDIS_DB = 14
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ENTITIES = {  # key: (name, base negative share, base volume per hour)
    "barclays": ("Barclays", 0.32, 9),
    "hsbc": ("HSBC", 0.28, 8),
    "bp": ("BP", 0.38, 7),
    "tesco": ("Tesco", 0.22, 6),
    "rolls-royce": ("Rolls-Royce", 0.30, 4),
    "lloyds": ("Lloyds Banking Group", 0.26, 5),
    "ftse": ("FTSE 100", 0.35, 11),
}
SPIKE = "bp"
MESSAGES = [
    ("BP shares slide as refinery outage hits quarterly output", 0.96),
    ("Analysts cut BP price target after profit warning", 0.93),
    ("BP faces fresh scrutiny over spill clean-up costs", 0.88),
    ("Investors question BP dividend after weak trading update", 0.84),
]


def now_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


async def seed(sessions: async_sessionmaker[AsyncSession], hours: int = 48) -> dict[str, Any]:
    end = now_hour()
    rows: list[Any] = [
        Entity(key=k, name=n, aliases=[n], tickers=[], case_sensitive_aliases=[]) for k, (n, _, _) in ENTITIES.items()
    ]
    totals = {}
    for h in range(hours):
        at = end - timedelta(hours=hours - 1 - h)
        all_counts = [0, 0, 0]
        for i, (key, (_, share, vol)) in enumerate(ENTITIES.items()):
            wave = 0.5 + 0.5 * math.sin(h / 3.5 + i)
            count = max(1, round(vol * (0.6 + 0.8 * wave)))
            s = share + 0.12 * math.sin(h / 5 + 2 * i)
            if key == SPIKE and h >= hours - 5:
                count, s = count * 2 + 4, 0.82
            neg = min(count, round(count * s))
            pos = (count - neg) // 2
            counts = (neg, count - neg - pos, pos)
            all_counts = [a + b for a, b in zip(all_counts, counts, strict=True)]
            for table in (TrendHour, TrendMinute):
                rows.append(
                    table(
                        stream="news",
                        entity=key,
                        bucket=at,
                        model_version="sentiment-v7",
                        count=count,
                        negative=neg,
                        neutral=counts[1],
                        positive=pos,
                        score_sum=(pos - neg) * 0.8,
                        confidence_sum=count * 0.87,
                    )
                )
        total = sum(all_counts)
        totals[at] = total
        for table in (TrendHour, TrendMinute):
            rows.append(
                table(
                    stream="news",
                    entity="_all",
                    bucket=at,
                    model_version="sentiment-v7",
                    count=total,
                    negative=all_counts[0],
                    neutral=all_counts[1],
                    positive=all_counts[2],
                    score_sum=(all_counts[2] - all_counts[0]) * 0.8,
                    confidence_sum=total * 0.87,
                )
            )
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    routing_bucket = minute - timedelta(minutes=5)
    for q, n in {
        "cards": 42,
        "payments": 31,
        "self_service": 27,
        "disputes": 18,
        "access": 15,
        "escalations": 9,
        "human": 7,
        "billing": 6,
        "lending": 4,
        "retention": 3,
    }.items():
        rows.append(RoutingMinute(bucket=routing_bucket, queue=q, count=n, priority=n // 6))
    for i, (text, p) in enumerate(MESSAGES):
        rows.append(
            ScoredEventRow(
                id=f"seed-msg-{i}",
                stream="news",
                event_time=end - timedelta(minutes=40 + i),
                received_time=end,
                entities=[SPIKE, "_all"],
                text=text,
                sentiment="negative",
                sentiment_confidence=p,
                sentiment_score=-p,
                negative_prob=p,
                model_version="sentiment-v7",
            )
        )
    async with sessions.begin() as session:
        session.add_all(rows)
    rule_id = await insert_rule(sessions, "watchlist-spike-browser")
    explanation = {  # the shape the alerter writes
        "share": 0.82,
        "volume": 38,
        "negatives": 31,
        "baseline_mean": 0.36,
        "baseline_std": 0.11,
        "baseline_windows": 12,
        "z": 4.1,
        "top_terms": [
            {"term": "refinery", "window": 9, "baseline": 1, "z": 4.2},
            {"term": "outage", "window": 6, "baseline": 2, "z": 3.1},
            {"term": "cut", "window": 4, "baseline": 3, "z": 2.2},
        ],
        "top_messages": [{"id": f"seed-msg-{i}", "text": t, "negative_prob": p} for i, (t, p) in enumerate(MESSAGES)],
    }
    await insert_alert(
        sessions,
        alert_id="seed-bp-spike",
        rule_id=rule_id,
        entity=SPIKE,
        at=end - timedelta(hours=2),
        explanation=explanation,
    )
    await insert_alert(
        sessions,
        alert_id="seed-ftse-old",
        rule_id=rule_id,
        entity="ftse",
        at=end - timedelta(hours=30),
        status="resolved",
        explanation={"share": 0.61, "volume": 23, "negatives": 14, "z": 2.7},  # the alerter's field names
    )
    return {"rule_id": rule_id, "end": end, "routing_bucket": routing_bucket}


async def unseed(sessions: async_sessionmaker[AsyncSession], routing_bucket: datetime, rule_id: int) -> None:
    keys = [*ENTITIES, "_all"]
    async with sessions.begin() as session:
        # the seeded rule watches _all with a low threshold: left enabled, a running alerter
        # in a later test fires it on that test's data
        await session.execute(delete(AlertRule).where(AlertRule.id == rule_id))
        for table in (TrendHour, TrendMinute):
            await session.execute(delete(table).where(table.entity.in_(keys)))
        await session.execute(delete(Entity).where(Entity.key.in_(list(ENTITIES))))
        await session.execute(delete(RoutingMinute).where(RoutingMinute.bucket == routing_bucket))
        await session.execute(delete(ScoredEventRow).where(ScoredEventRow.id.startswith("seed-msg-")))
        await session.execute(delete(Alert).where(Alert.entity.in_(keys)))


def register_models(root: Path, tmp: Path) -> None:
    registry = Registry(root)
    (tmp / "tokenizer.json").write_text("{}")
    (tmp / "model.int8.onnx").write_bytes(b"placeholder")
    for task in TASKS:
        registry.register(
            task,
            f"{task}-v7",
            {"name": f"tonewatch-{task}"},
            files={"tokenizer.json": tmp / "tokenizer.json", "model.int8.onnx": tmp / "model.int8.onnx"},
        )
        registry.promote(task, f"{task}-v7")
