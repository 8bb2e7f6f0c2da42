"""``tonewatch ingest file`` on a live pipe (``tail -f f.jsonl | ... /dev/stdin``): a line is in
Kafka within a second of its arrival. Before, lines were sent 200 at a time: the writer below,
which keeps the pipe open until its 5 lines are consumed, waited for ever."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_a_few_lines_of_a_live_pipe_reach_kafka_before_it_ends(
    ingest: Any, consumed: Any, tmp_path: Path
) -> None:
    n = 5
    fifo = tmp_path / "feed.jsonl"
    os.mkfifo(fifo)
    in_kafka = threading.Event()
    released: list[bool] = []

    def write() -> None:
        with fifo.open("w") as fh:
            fh.write(
                "".join(
                    json.dumps({"text": f"live {i}", "event_time": "2026-01-01T10:00:00Z"}) + "\n" for i in range(n)
                )
            )
            fh.flush()
            released.append(in_kafka.wait(60))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    proc = asyncio.create_task(ingest(fifo))
    try:
        got = await consumed(n)
    finally:
        in_kafka.set()  # the pipe ends either way: the command is not left running
    done = await proc
    writer.join(5)
    assert sorted(e.text for e in got) == sorted(f"live {i}" for i in range(n)), "not in Kafka before the pipe ended"
    assert released == [True]
    assert done.returncode == 0, done.stderr
    assert f"produced {n} events" in done.stdout
