"""`models predict` replaces --output only once complete, and every id in its output is distinct.

Before: the output was written in place, so a run that failed or was interrupted half-way
left a truncated file of valid-looking lines where the previous output was; duplicate,
null and object ids were copied through, and a line without an id got its line number,
which could equal another line's id.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.labels import SENTIMENT_LABELS
from shared.training.metrics import FloatArray
from shared.training.predict import BATCH, predict_file


def _scorer(texts: Sequence[str]) -> FloatArray:
    out = np.full((len(texts), 3), 0.1)
    out[:, 1] = 0.8
    return out


class Boom(Exception):
    """A failure in the middle of a run."""


def _failing_after(batches: int, exc: BaseException) -> Any:
    """A scorer that raises ``exc`` on its call number ``batches + 1``."""
    calls = 0

    def scorer(texts: Sequence[str]) -> FloatArray:
        nonlocal calls
        calls += 1
        if calls > batches:
            raise exc
        return _scorer(texts)

    return scorer


def _lines(n: int) -> str:
    return "".join(json.dumps({"id": i, "text": f"text {i}"}) + "\n" for i in range(n))


@pytest.mark.parametrize("exc", [Boom("model failed"), KeyboardInterrupt(), SystemExit(143)])
def test_a_run_stopped_half_way_leaves_the_previous_output_and_no_temporary_file(
    tmp_path: Path, exc: BaseException
) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "keep.jsonl"
    src.write_text(_lines(BATCH * 4), encoding="utf-8")
    dst.write_text('{"id": "previous", "label": "neutral"}\n', encoding="utf-8")
    with pytest.raises(type(exc)):
        predict_file(_failing_after(2, exc), SENTIMENT_LABELS, src, dst)  # two batches written, then stopped
    assert dst.read_text(encoding="utf-8") == '{"id": "previous", "label": "neutral"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "keep.jsonl"]


def test_a_stopped_run_with_no_previous_output_leaves_nothing(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "out" / "new.jsonl"
    src.write_text(_lines(BATCH * 3), encoding="utf-8")
    with pytest.raises(Boom):
        predict_file(_failing_after(1, Boom()), SENTIMENT_LABELS, src, dst)
    assert list(dst.parent.iterdir()) == []


def test_a_complete_run_replaces_the_output_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "keep.jsonl"
    src.write_text(_lines(BATCH + 3), encoding="utf-8")
    dst.write_text("old\n" * 10_000, encoding="utf-8")
    stats = predict_file(_scorer, SENTIMENT_LABELS, src, dst)
    recs = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert stats.predicted == len(recs) == BATCH + 3 and [r["id"] for r in recs] == list(range(BATCH + 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "keep.jsonl"]


def test_an_output_through_a_symbolic_link_replaces_its_target(tmp_path: Path) -> None:
    src, target, link = tmp_path / "in.jsonl", tmp_path / "data" / "real.jsonl", tmp_path / "link.jsonl"
    src.write_text(_lines(2), encoding="utf-8")
    target.parent.mkdir()
    target.write_text("old\n", encoding="utf-8")
    link.symlink_to(target)
    predict_file(_scorer, SENTIMENT_LABELS, src, link)
    assert link.is_symlink() and len(target.read_text(encoding="utf-8").splitlines()) == 2
    assert sorted(p.name for p in target.parent.iterdir()) == ["real.jsonl"]


def test_an_output_that_is_a_pipe_is_written_directly(tmp_path: Path) -> None:
    src, fifo = tmp_path / "in.jsonl", tmp_path / "out.fifo"
    src.write_text(_lines(3), encoding="utf-8")
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    predict_file(_scorer, SENTIMENT_LABELS, src, fifo)
    reader.join()
    assert [json.loads(x)["id"] for x in got[0].splitlines()] == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.fifo"]


def _run(tmp_path: Path, lines: Sequence[str]) -> list[dict[str, Any]]:
    src, dst = tmp_path / "in.jsonl", tmp_path / "o.jsonl"
    src.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    predict_file(_scorer, SENTIMENT_LABELS, src, dst)
    return [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]


def test_a_repeated_id_is_an_error_record_naming_the_earlier_line(tmp_path: Path) -> None:
    recs = _run(
        tmp_path,
        [
            '{"id": "a", "text": "one"}',
            '{"id": 7, "text": "two"}',
            "",
            '{"id": "a", "text": "three"}',
            '{"id": 7, "text": 5}',
            '{"id": "7", "text": "a string is not the integer"}',
        ],
    )
    assert [r["id"] for r in recs] == ["a", 7, "line 4", "line 5", "7"]
    assert recs[2]["error"] == 'line 4: id "a" repeats the id of line 1'
    assert recs[3]["error"] == "line 5: id 7 repeats the id of line 2"
    assert "label" in recs[0] and "label" in recs[1] and "label" in recs[4]


def test_an_id_whose_text_is_refused_still_counts_as_taken(tmp_path: Path) -> None:
    recs = _run(tmp_path, ['{"id": "a", "text": null}', '{"id": "a", "text": "again"}'])
    assert recs[0] == {"id": "a", "error": "line 1: field 'text' must be a string"}
    assert recs[1] == {"id": "line 2", "error": 'line 2: id "a" repeats the id of line 1'}


@pytest.mark.parametrize(
    ("raw", "kind"),
    [("null", "null"), ('{"k": 1}', "an object"), ("[1]", "an array"), ("true", "a boolean"), ("1.5", "a fraction")],
)
def test_an_id_that_is_not_a_string_or_an_integer_is_an_error_record(tmp_path: Path, raw: str, kind: str) -> None:
    recs = _run(tmp_path, ['{"id": 1, "text": "ok"}', f'{{"id": {raw}, "text": "x"}}'])
    assert recs[1] == {"id": "line 2", "error": f"line 2: field 'id' must be a string or an integer, not {kind}"}
    assert "label" in recs[0]


def test_a_line_without_an_id_gets_one_no_other_line_can_have(tmp_path: Path) -> None:
    """Before: line 2 without an id got 2, the id line 1 gave itself."""
    recs = _run(
        tmp_path,
        [
            '{"id": 2, "text": "explicit two"}',
            '{"text": "no id"}',
            '{"id": "line 2", "text": "the generated form"}',
            '{"id": "line 02", "text": "not the generated form"}',
        ],
    )
    assert [r["id"] for r in recs] == [2, "line 2", "line 3", "line 02"]
    assert "label" in recs[1] and "label" in recs[3]
    assert recs[2]["error"] == (
        """line 3: field 'id' "line 2" is reserved: "line N" is the id given to a line without one"""
    )
    assert len({json.dumps(r["id"]) for r in recs}) == len(recs)


def test_a_long_repeated_id_is_cut_in_the_message(tmp_path: Path) -> None:
    rid = "x" * 5000
    recs = _run(tmp_path, [json.dumps({"id": rid, "text": "a"}), json.dumps({"id": rid, "text": "b"})])
    assert recs[1]["id"] == "line 2" and len(recs[1]["error"]) < 120 and "repeats the id of line 1" in recs[1]["error"]
