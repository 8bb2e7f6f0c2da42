"""JSONL prediction with a fake scorer (no model needed)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from services.cli.models import app
from shared.labels import SENTIMENT_LABELS
from shared.training.metrics import FloatArray
from shared.training.predict import BATCH, PredictStats, Scorer, predict_file, same_file


def _scorer(texts: Sequence[str]) -> FloatArray:
    out = np.full((len(texts), 3), 0.1)
    for i, t in enumerate(texts):
        out[i, len(t) % 3] = 0.8
    return out


def test_predict_file_streams_in_order_with_errors(tmp_path: Path) -> None:
    rows = [json.dumps({"id": i, "text": "a" * i}) for i in range(BATCH + 5)]
    rows[3] = "{broken"
    rows[4] = json.dumps([1, 2])
    rows[5] = json.dumps({"id": "x", "text": 7})
    rows.insert(6, "")
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    dst = tmp_path / "out" / "o.jsonl"
    stats = predict_file(_scorer, SENTIMENT_LABELS, src, dst)
    recs = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert stats.lines == len(recs) == BATCH + 5
    assert stats.errors == 3 and stats.predicted == BATCH + 2
    assert [r["id"] for r in recs[:3]] == [0, 1, 2]
    assert "invalid JSON" in recs[3]["error"] and recs[5]["id"] == "x"
    assert recs[7] == {
        "id": 7,
        "label": SENTIMENT_LABELS[1],
        "confidence": 0.8,
        "probs": {"negative": 0.1, "neutral": 0.8, "positive": 0.1},
    }
    assert recs[-1]["id"] == BATCH + 4


def test_missing_id_uses_line_number(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Ünïcödé 🙂"}) + "\n", encoding="utf-8")
    dst = tmp_path / "o.jsonl"
    predict_file(_scorer, SENTIMENT_LABELS, src, dst)
    rec = json.loads(dst.read_text(encoding="utf-8"))
    assert rec["id"] == "line 1" and rec["label"] in SENTIMENT_LABELS


def test_a_line_that_is_not_utf8_or_not_unicode_is_an_error_record_and_the_rest_go_on(tmp_path: Path) -> None:
    """Before: one byte that is not UTF-8 raised and left an empty output file; a lone
    surrogate escape in the text broke the tokenizer's whole batch, in the id the writer."""
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b'{"id": 1, "text": "ok"}\n'
        b'{"id": 2, "text": "bad \xff byte"}\n'
        b'{"id": 3, "text": "caf\\u00e9 \\ud800"}\n'
        b'{"id": "\\ud800", "text": "x"}\n'
        b'{"id": 5, "text": "fine"}\n'
    )
    dst = tmp_path / "o.jsonl"
    stats = predict_file(_scorer, SENTIMENT_LABELS, src, dst)
    recs = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert (stats.predicted, stats.errors) == (2, 3)
    assert [r["id"] for r in recs] == [1, "line 2", 3, "line 4", 5]
    assert [("error" in r) for r in recs] == [False, True, True, True, False]
    assert "invalid UTF-8" in recs[1]["error"] and "surrogate" in recs[2]["error"] and "'id'" in recs[3]["error"]


def test_the_output_may_not_be_the_input(tmp_path: Path) -> None:
    src = tmp_path / "same.jsonl"
    src.write_text(json.dumps({"id": 1, "text": "keep me"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is the input file"):
        predict_file(_scorer, SENTIMENT_LABELS, src, tmp_path / "." / "same.jsonl")
    assert json.loads(src.read_text(encoding="utf-8")) == {"id": 1, "text": "keep me"}


def _strict(line: str) -> Any:
    """Parse as strict JSON: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise AssertionError(f"non-JSON constant {name} in {line!r}")

    return json.loads(line, parse_constant=refuse)


def _run(tmp_path: Path, data: bytes, scorer: Scorer = _scorer) -> tuple[PredictStats, list[dict[str, Any]]]:
    src = tmp_path / "in.jsonl"
    src.write_bytes(data)
    dst = tmp_path / "o.jsonl"
    stats = predict_file(scorer, SENTIMENT_LABELS, src, dst)
    return stats, [_strict(x) for x in dst.read_text(encoding="utf-8").split("\n")[:-1]]


def test_a_deeply_nested_line_is_an_error_record_and_the_rest_go_on(tmp_path: Path) -> None:
    """Before: RecursionError escaped, the run ended with exit 1 and an empty output file."""
    deep = b'{"id": ' + b"[" * 5000 + b"]" * 5000 + b', "text": "x"}\n'
    stats, recs = _run(tmp_path, b'{"id": "a", "text": "ok"}\n' + deep + b'{"id": "c", "text": "fine"}\n')
    assert (stats.predicted, stats.errors) == (2, 1)
    assert [r["id"] for r in recs] == ["a", "line 2", "c"]
    assert "nested too deeply" in recs[1]["error"] and "label" in recs[2]


def test_an_id_that_is_nan_or_infinity_is_refused_and_output_is_strict_json(tmp_path: Path) -> None:
    """Before: the output held NaN and Infinity, which JSON readers refuse."""
    ids = [b"NaN", b"1e400", b"[-Infinity]", b"4"]
    stats, recs = _run(tmp_path, b"".join(b'{"id": %s, "text": "x"}\n' % i for i in ids))
    assert (stats.predicted, stats.errors) == (1, 3)
    assert [r["id"] for r in recs] == ["line 1", "line 2", "line 3", 4]
    assert all("'id' is not a finite number" in r["error"] for r in recs[:3])


def test_non_finite_probabilities_are_error_records_not_invalid_json(tmp_path: Path) -> None:
    def broken(texts: Sequence[str]) -> FloatArray:
        out = _scorer(texts)
        out[[i for i, t in enumerate(texts) if t == "nan"]] = np.nan
        return out

    stats, recs = _run(tmp_path, b'{"id": 1, "text": "ok"}\n{"id": 2, "text": "nan"}\n', broken)
    assert (stats.predicted, stats.errors) == (1, 1)
    assert recs[1] == {"id": 2, "error": "line 2: the model returned non-finite probabilities"}
    assert recs[0]["label"] in SENTIMENT_LABELS


def test_a_byte_order_mark_at_the_start_is_skipped(tmp_path: Path) -> None:
    """Before: line 1 was 'invalid JSON' while `score` reads the same file fine."""
    stats, recs = _run(tmp_path, b'\xef\xbb\xbf{"id": "a", "text": "ok"}\n')
    assert (stats.predicted, stats.errors) == (1, 0) and recs[0]["id"] == "a"


def test_same_file_sees_links(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n", encoding="utf-8")
    (tmp_path / "hard.jsonl").hardlink_to(src)
    (tmp_path / "soft.jsonl").symlink_to(src)
    assert same_file(src, tmp_path / "hard.jsonl") and same_file(src, tmp_path / "soft.jsonl")
    assert not same_file(src, tmp_path / "new.jsonl")


def test_cli_refuses_an_output_hard_linked_to_the_input_without_a_traceback(tiny_models: Path, tmp_path: Path) -> None:
    """Before: the ValueError of predict_file escaped as a traceback, exit 1."""
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "keep me"}\n', encoding="utf-8")
    (tmp_path / "link.jsonl").hardlink_to(src)
    args = ["--models-dir", str(tiny_models), "predict", "--task", "sentiment"]
    res = CliRunner().invoke(app, [*args, "--input", str(src), "--output", str(tmp_path / "link.jsonl")])
    assert res.exit_code == 2 and not isinstance(res.exception, ValueError), (res.output, res.exception)
    assert "must not be the input file" in res.output
    assert src.read_text(encoding="utf-8") == '{"id": 1, "text": "keep me"}\n'
