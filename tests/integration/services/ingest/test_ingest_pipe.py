"""``tonewatch ingest file`` on a named pipe (as ``<(gunzip -c f.jsonl.gz)`` gives): before,
the checks before the read each opened the pipe again and consumed its lines (100 lines:
"produced 0", exit 0; 20,000: some 1,200 lost without a word). Every line is now produced
exactly once, under its own line number."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_every_line_of_a_named_pipe_is_produced_once(ingest: Any, consumed: Any, tmp_path: Path) -> None:
    n = 2_000
    fifo = tmp_path / "news.jsonl"
    os.mkfifo(fifo)

    def write() -> None:
        try:
            with fifo.open("w") as fh:
                for i in range(n):
                    fh.write(json.dumps({"text": f"headline {i}", "event_time": "2026-01-01T10:00:00Z"}) + "\n")
        except BrokenPipeError:  # the reader closed early (the old code did): the test fails on the count
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    proc = await ingest(fifo)
    writer.join(5)
    assert proc.returncode == 0, proc.stderr
    assert f"produced {n} events" in proc.stdout
    got = await consumed(n)
    assert sorted(e.text for e in got) == sorted(f"headline {i}" for i in range(n))
    # ids derive from the line number: each line was read under its own number
    assert {e.id.split(":")[1] for e in got} == {str(i) for i in range(1, n + 1)}


async def test_a_live_pipe_is_produced_as_it_arrives(ingest: Any, consumed: Any, tmp_path: Path) -> None:
    """Before, a pipe was copied whole to a temporary file first: a live feed (or ``yes``)
    sent nothing until it ended, and filled the disk meanwhile. The writer holds the pipe
    open until the first chunk of lines (200, a replay's chunk) is in Kafka."""
    first, more = 200, 5
    fifo = tmp_path / "feed.jsonl"
    os.mkfifo(fifo)
    in_kafka = threading.Event()
    released: list[bool] = []

    def line(i: int) -> str:
        return json.dumps({"text": f"live {i}", "event_time": "2026-01-01T10:00:00Z"}) + "\n"

    def write() -> None:
        with fifo.open("w") as fh:
            fh.write("".join(line(i) for i in range(first)))
            fh.flush()
            released.append(in_kafka.wait(60))
            fh.write("".join(line(i) for i in range(first, first + more)))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    proc = asyncio.create_task(ingest(fifo))
    got = await consumed(first)
    in_kafka.set()
    done = await proc
    writer.join(5)
    assert released == [True], "nothing reached Kafka before the pipe ended"
    assert sorted(e.text for e in got) == sorted(f"live {i}" for i in range(first))
    assert done.returncode == 0, done.stderr
    assert f"produced {first + more} events" in done.stdout
