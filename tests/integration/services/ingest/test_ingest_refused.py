"""`tonewatch ingest file` when the topic refuses a record (larger than its
``max.message.bytes``, lower than the 1,040,000 bytes ingest allows an event): that line is
rejected by its number and the rest of the file is sent (review finding: the test fails on
the code before the fix, where the replay stopped with a traceback, and every later record
for the refused record's partition failed too, the idempotent producer's sequence left with
a gap)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.config import KafkaSettings
from shared.kafka.clients import ensure_topics

pytestmark = pytest.mark.integration

TOPIC_LIMIT = 20_000


@pytest.mark.parametrize("options", [(), ("--rate", "200")], ids=["unpaced", "rated"])
async def test_a_record_the_topic_refuses_is_a_rejected_line_and_the_rest_is_sent(
    ingest: Any, consumed: Any, kafka_settings: KafkaSettings, unique: str, tmp_path: Path, options: tuple[str, ...]
) -> None:
    topic = f"t{unique}.news.raw"
    await ensure_topics(kafka_settings, [topic], configs={"max.message.bytes": str(TOPIC_LIMIT)})
    big = {3, 6}
    path = tmp_path / "news.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"n{i}", "text": ("word " * 6_000) if i in big else f"headline {i}"}) + "\n"
            for i in range(1, 11)
        )
    )
    proc = await ingest(path, *options)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "never retrieved" not in proc.stderr, proc.stderr[-3000:]
    assert "produced 8 events" in proc.stdout, (proc.stdout, proc.stderr[-3000:])
    for n in sorted(big):
        assert f"line {n}: rejected: refused by {topic}: MessageSizeTooLargeError" in proc.stderr, proc.stderr
    assert proc.stderr.count("rejected:") == 2
    got = await consumed(8)
    assert sorted(e.id for e in got) == sorted(f"n{i}" for i in range(1, 11) if i not in big)
