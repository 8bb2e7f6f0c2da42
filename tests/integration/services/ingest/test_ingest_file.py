"""`tonewatch ingest file` against the real broker: valid lines produced (ids
assigned), invalid lines (an event too large for a Kafka message among them) reported
with their line numbers, exit code 1."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import KafkaSettings
from shared.events import RawNews
from shared.kafka.clients import make_consumer

pytestmark = pytest.mark.integration


async def test_ingest_file(kafka_settings: KafkaSettings, unique: str, tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"text": "Tesco shares rise", "event_time": "2026-01-01T10:00:00Z"}),
                json.dumps({"id": "keep-me", "text": "BP profit falls"}),
                "{broken",
                json.dumps({"text": ""}),
                json.dumps({"id": "too-big", "text": "é" * 600_000}),  # 1.2 MB: more than a Kafka message holds
            ]
        )
        + "\n"
    )
    prefix = f"t{unique}."
    env = {
        "TW_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "TW_TOPICS__PREFIX": prefix,
        "PATH": "/usr/bin:/bin",
    }
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services", "ingest", "file", str(path), "--stream", "news", "--rate", "50"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "produced 2 events" in proc.stdout
    assert "line 3: rejected: malformed JSON" in proc.stderr and "line 4: rejected: text" in proc.stderr
    assert "line 5: rejected: text: the event is 1,200,1" in proc.stderr and "Traceback" not in proc.stderr
    consumer = make_consumer(kafka_settings, f"{prefix}news.raw", group_id=f"g{unique}", client_id="test")
    await consumer.start()
    try:
        got: list[RawNews] = []
        async with asyncio.timeout(30):
            while len(got) < 2:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += [RawNews.model_validate_json(r.value) for r in records if r.value]
    finally:
        await consumer.stop()
    assert {e.text for e in got} == {"Tesco shares rise", "BP profit falls"}
    assert "keep-me" in {e.id for e in got} and all(e.id for e in got)


async def test_ingest_file_backfill_sends_the_past_at_once(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    """``--speedup 3600 --backfill 1.5``: four events an hour apart land 1 s apart, the first
    two already in the past when they are sent, the last two sent when their time comes."""
    path = tmp_path / "news.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"b{h}", "text": f"headline {h}", "event_time": f"2020-01-01T0{h}:00:00Z"}) + "\n"
            for h in range(4)
        )
    )
    prefix = f"t{unique}."
    env = {
        "TW_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "TW_TOPICS__PREFIX": prefix,
        "PATH": "/usr/bin:/bin",
    }
    cmd = [sys.executable, "-m", "services", "ingest", "file", str(path), "--stream", "news"]
    proc = await asyncio.to_thread(
        subprocess.run, [*cmd, "--speedup", "3600", "--backfill", "1.5"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    refused = await asyncio.to_thread(
        subprocess.run, [*cmd, "--rate", "5", "--backfill", "60"], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 2 and "--backfill needs --speedup" in refused.stderr
    consumer = make_consumer(kafka_settings, f"{prefix}news.raw", group_id=f"g{unique}", client_id="test")
    await consumer.start()
    try:
        got: dict[str, tuple[float, float]] = {}  # id -> (event time, time the producer sent it)
        async with asyncio.timeout(30):
            while len(got) < 4:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        e = RawNews.model_validate_json(r.value or b"")
                        got[e.id] = (e.event_time.timestamp(), r.timestamp / 1000)
    finally:
        await consumer.stop()
    times = [got[f"b{h}"][0] for h in range(4)]
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [1.0, 1.0, 1.0]
    lag = {k: sent - t for k, (t, sent) in got.items()}
    assert lag["b0"] > 1.0 and lag["b1"] > 0.0  # sent at once, with event times in the past
    assert -0.2 < lag["b2"] < 1.0 and -0.2 < lag["b3"] < 1.0  # sent when their time came
