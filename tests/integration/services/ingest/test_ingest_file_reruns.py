"""`tonewatch ingest file` against the real broker and ledger: a file still being written,
a replay cut short and resumed, an id repeated within a file. Each is counted once."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from tw_testing import scored_news

from services.aggregator.persist import store_batch

pytestmark = pytest.mark.integration


async def test_a_csv_still_being_written_holds_its_last_row_back_until_complete(
    ingest: Any, consumed: Any, tmp_path: Path, sessions: Any
) -> None:
    """Before, the cut-off last row ("Acme sh") was sent, and after the file was completed
    the rerun sent it again under a new id: the ledger counted that headline twice."""
    path = tmp_path / "grow.csv"
    path.write_text("text,source\nfirst headline,wire\nAcme sh")
    cut = await ingest(path)
    assert cut.returncode == 1 and "produced 1 events" in cut.stdout, cut.stderr
    assert "line 3: rejected: no line ending at the end of the file (still being written?)" in cut.stderr
    path.write_text("text,source\nfirst headline,wire\nAcme shares slump after profit warning,wire\n")
    done = await ingest(path)
    assert done.returncode == 0 and "produced 2 events" in done.stdout, done.stderr
    got = await consumed(3)
    assert sorted(e.text for e in got) == ["Acme shares slump after profit warning", "first headline", "first headline"]
    assert await store_batch(sessions, [scored_news(e) for e in got]) == 2  # the rerun's first row: once


async def test_a_retimed_replay_cut_short_is_resumed_with_its_run(
    ingest: Any, consumed: Any, tmp_path: Path, sessions: Any
) -> None:
    """Before, the run stamp was neither printed nor accepted: resuming a ``--speedup``
    replay sent everything again under a new stamp, counted twice."""
    path = tmp_path / "news.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "text": f"headline {i}", "event_time": f"2020-01-01T00:00:0{i}Z"}) + "\n"
            for i in range(3)
        )
    )
    first = await ingest(path, "--speedup", "1000", "--json")
    assert first.returncode == 0, first.stderr
    told = re.search(r"to resume this replay if cut short: --run (\d+)", first.stderr)
    assert told is not None and json.loads(first.stdout)["run"] == int(told.group(1)), first.stderr
    resumed = await ingest(path, "--speedup", "1000", "--run", told.group(1))
    assert resumed.returncode == 0 and "produced 3 events" in resumed.stdout, resumed.stderr
    got = await consumed(6)
    assert len(got) == 6 and {e.id for e in got} == {f"r{i}@{told.group(1)}" for i in range(3)}
    assert await store_batch(sessions, [scored_news(e) for e in got]) == 3  # the resumed run's events: once


async def test_a_line_repeating_an_id_of_the_file_is_rejected_not_dropped_downstream(
    ingest: Any, consumed: Any, tmp_path: Path
) -> None:
    """Before, both lines were produced and reported as such; the pipeline kept the first."""
    path = tmp_path / "dupid.jsonl"
    path.write_text(
        '{"id": "n1", "text": "Acme beats estimates"}\n{"id": "n2", "text": "BP flat"}\n'
        '{"id": "n1", "text": "Globex files for bankruptcy"}\n'
    )
    proc = await ingest(path, "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["produced"] == 2 and report["rejected"] == [
        {"line": 3, "reason": "id: line 1 has the same id (the pipeline keeps one event per id); not sent"}
    ]
    got = await consumed(2)
    assert {e.id: e.text for e in got} == {"n1": "Acme beats estimates", "n2": "BP flat"} and len(got) == 2
