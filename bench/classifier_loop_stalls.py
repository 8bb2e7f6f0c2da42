"""How long the classifier's CPU steps block its event loop, on the loop (the code before)
and in a worker thread (the shipped code), side by side in one run: building the entity
matcher of a 10,000-entity watchlist (each refresh), and scoring (redaction and entity
tagging) one batch at 4,000 and at 100,000 stored characters.

A coroutine sleeping 1 ms in a loop records the longest gap (the loop's longest stall);
``elapsed`` is the step's wall time, which the thread does not shorten (the GIL).
No models and no stack: scoring gets fixed verdicts.

Usage: ``python bench/classifier_loop_stalls.py``. Last line: one JSON object.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import string
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.classifier.classify import Verdicts  # noqa: E402
from services.classifier.config import ClassifierSettings  # noqa: E402
from services.classifier.decode import decode_batch  # noqa: E402
from services.classifier.pipeline import ClassifierPipeline  # noqa: E402
from shared.entities import EntityMatcher, WatchedEntity  # noqa: E402
from shared.inference.engine import Prediction  # noqa: E402
from shared.kafka.records import InRecord  # noqa: E402

random.seed(1)


def word(n: int) -> str:
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n)).capitalize()


def watchlist(n: int = 10_000) -> list[WatchedEntity]:
    entities = []
    for k in range(n):
        a, b = word(7), word(6)
        aliases = (f"{a} {b}", f"{a} {b} plc", a + "corp")
        entities.append(WatchedEntity(key=f"E{k}", name=f"{a} {b}", aliases=aliases, tickers=(a[:4].upper(),)))
    return entities


async def stall(step: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    """Longest loop stall (ms) and wall time (s) of ``step``."""
    gaps: list[float] = []

    async def monitor() -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            gaps.append(time.perf_counter() - start)

    task = asyncio.create_task(monitor())
    await asyncio.sleep(0.05)
    gaps.clear()
    start = time.perf_counter()
    await step()
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.01)
    task.cancel()
    return {"max_stall_ms": round(1000 * max(gaps), 1), "elapsed_s": round(elapsed, 3)}


def batch(settings: ClassifierSettings, text: str, n: int) -> list[InRecord]:
    now = datetime.now(UTC).isoformat()
    body = [json.dumps({"id": f"x{i}", "event_time": now, "text": text}).encode() for i in range(n)]
    return [InRecord(settings.topics.news_raw, 0, i, None, v, [], None) for i, v in enumerate(body)]


async def main() -> None:
    entities = watchlist()
    EntityMatcher(entities)  # warm: the first build also compiles the boundary classes (cached)
    rows: list[dict[str, Any]] = []

    async def on_loop_build() -> None:
        EntityMatcher(entities)

    async def threaded_build() -> None:
        await asyncio.to_thread(EntityMatcher, entities)

    for way, step in (("on the loop", on_loop_build), ("worker thread", threaded_build)):
        rows.append({"step": "matcher build, 10,000 entities", "way": way, **await stall(step)})
    matcher = EntityMatcher(entities)
    prose = " ".join(word(random.randint(3, 9)) for _ in range(20_000))
    pii = "call 415-555-2671 or mail jane.doe@example.com, card 4111 1111 1111 1111 " * 2_000
    cases = [
        ("score 256 x 4,000 chars prose", 4_000, prose[:4_000], 256),
        ("score 80 x 100,000 chars prose", 100_000, prose[:100_000], 80),
        ("score 80 x 100,000 chars pii-dense", 100_000, pii[:100_000], 80),
    ]
    for name, chars, text, n in cases:
        settings = ClassifierSettings(storage_text_chars=chars)
        pipe = ClassifierPipeline(settings, Any, Any, Any, lambda: matcher)  # type: ignore[arg-type]
        good, _ = decode_batch(batch(settings, text, n), settings.topics)
        p = Prediction("neutral", 0.8, {"negative": 0.1, "neutral": 0.8, "positive": 0.1}, "m", "v1", "sha")
        verdicts = Verdicts([p] * n, [None] * n)

        score = functools.partial(pipe._score, good, verdicts, matcher)

        async def on_loop(score: Callable[[], Any] = score) -> None:
            score()

        async def threaded(score: Callable[[], Any] = score) -> None:
            await asyncio.to_thread(score)

        for way, step in (("on the loop", on_loop), ("worker thread", threaded)):
            rows.append({"step": name, "way": way, **await stall(step)})
    print(f"{'step':<36} {'way':<14} {'max stall ms':>12} {'elapsed s':>10}")
    for r in rows:
        print(f"{r['step']:<36} {r['way']:<14} {r['max_stall_ms']:>12.1f} {r['elapsed_s']:>10.3f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    asyncio.run(main())
