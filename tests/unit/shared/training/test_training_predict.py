"""JSONL prediction with a fake scorer (no model needed)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from shared.labels import SENTIMENT_LABELS
from shared.training.metrics import FloatArray
from shared.training.predict import BATCH, predict_file


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
    assert rec["id"] == 1 and rec["label"] in SENTIMENT_LABELS


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
    assert [r["id"] for r in recs] == [1, 2, 3, 4, 5]
    assert [("error" in r) for r in recs] == [False, True, True, True, False]
    assert "invalid UTF-8" in recs[1]["error"] and "surrogate" in recs[2]["error"] and "'id'" in recs[3]["error"]


def test_the_output_may_not_be_the_input(tmp_path: Path) -> None:
    src = tmp_path / "same.jsonl"
    src.write_text(json.dumps({"id": 1, "text": "keep me"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is the input file"):
        predict_file(_scorer, SENTIMENT_LABELS, src, tmp_path / "." / "same.jsonl")
    assert json.loads(src.read_text(encoding="utf-8")) == {"id": 1, "text": "keep me"}
