"""Malformed labelled files (a row without text included): a DataError naming the file
and line (never a traceback), exit 2 (invalid input) from `models score`, `evaluate`,
`export`, `train`; a byte-order mark or a raw U+2028 inside a text is no error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.models import app
from shared.training import datasets
from shared.training.datasets import DataError, load_file, load_task

GOOD = '{"text": "Shares surge", "label": "positive"}\n'

BROKEN = {
    "broken.jsonl": (GOOD + '{"text": "bad\n').encode(),
    "array.jsonl": (GOOD + '["x"]\n').encode(),
    "latin1.csv": "text,label\nCaf\xe9 shares surge,positive\n".encode("latin-1"),
    "case.jsonl": b'{"text": "Shares surge", "label": "Positive"}\n',
    "nolabel.csv": b"text,sentiment\nShares surge,positive\n",
    "blank.jsonl": (GOOD + '{"text": " ", "label": "positive"}\n').encode(),
    "notext.jsonl": (GOOD + GOOD + '{"label": "bogus"}\n').encode(),
    "nulltext.jsonl": b'{"text": null, "label": "positive"}\n',
    "blank.csv": b"text,label\nShares surge,positive\n,negative\n",
    "deep.jsonl": b'{"text": "x", "label": "positive", "n": ' + b"[" * 5000 + b"]" * 5000 + b"}\n",
}
WHERE = {
    "broken.jsonl": (2, "not valid JSON"),
    "array.jsonl": (2, "expected a JSON object"),
    "latin1.csv": (2, "not UTF-8"),
    "case.jsonl": (1, "'Positive' not in the sentiment label set"),
    "nolabel.csv": (1, "lacks column(s) ['label']"),
    "blank.jsonl": (2, "field 'text' is empty"),
    "notext.jsonl": (3, "field 'text' is missing or not a string"),
    "nulltext.jsonl": (1, "field 'text' is missing or not a string"),
    "blank.csv": (3, "field 'text' is empty"),
    "deep.jsonl": (1, "nested too deeply"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_malformed_file_names_the_file_and_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BROKEN[name])
    line, words = WHERE[name]
    with pytest.raises(DataError) as exc:
        load_file(path, "sentiment")
    assert f"{path}:{line}:" in str(exc.value) and words in str(exc.value)
    with pytest.raises(DataError):
        load_task("sentiment", [path])


def test_a_gold_row_that_is_not_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "guardian_headlines", lambda: (["h0", "h1"], None))
    path = tmp_path / "gold.csv"
    path.write_text("row,label\n1,positive\nabc,positive\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:3: row 'abc' is not a row number"):
        load_file(path, "sentiment")


def test_a_byte_order_mark_is_read_past(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bom = "\ufeff"
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_text(bom + GOOD, encoding="utf-8")
    csv_file = tmp_path / "bom.csv"
    csv_file.write_text(bom + "text,label\nShares surge,positive\n", encoding="utf-8")
    for path in (jsonl, csv_file):
        [ex] = load_file(path, "sentiment")
        assert (ex.text, ex.label) == ("Shares surge", "positive")
    monkeypatch.setattr(datasets, "guardian_headlines", lambda: (["h0", "h1"], None))
    gold = tmp_path / "gold.csv"
    gold.write_text(bom + "row,label\n1,negative\n", encoding="utf-8")
    [ex] = load_file(gold, "sentiment")
    assert (ex.text, ex.label) == ("h1", "negative")


def test_unicode_line_separators_inside_a_text_are_no_line_break(tmp_path: Path) -> None:
    """Before: str.splitlines cut the line at the raw U+2028 and the file was refused."""
    path = tmp_path / "seps.jsonl"
    texts = [f"Profits{sep}fall" for sep in "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"]
    rows = [json.dumps({"text": t, "label": "negative"}, ensure_ascii=False) for t in texts]
    path.write_text("\r\n".join(rows) + "\n", encoding="utf-8")
    examples = load_file(path, "sentiment")
    assert [(ex.text, ex.label) for ex in examples] == [("Profits fall", "negative")] * len(texts)


@pytest.fixture
def models(tiny_models: Path, tmp_path: Path) -> Path:
    root = tmp_path / "models"
    shutil.copytree(tiny_models, root)
    return root


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_cli_data_errors_are_one_line_exit_2(models: Path, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BROKEN[name])
    common = ["--models-dir", str(models)]
    task = ["--task", "sentiment"]
    card = (models / "sentiment" / "tiny" / "card.json").read_bytes()
    for cmd in (
        ["score", *task, "--input", str(path)],
        ["score", *task, "--input", str(path), "--record"],
        ["evaluate", *task, "--version", "tiny", "--data", str(path)],
        ["export", *task, "--from", str(tmp_path), "--version", "x", "--data", str(path)],
        ["train", *task, "--data", str(path), "--version", "x", "--out", str(tmp_path / "run")],
    ):
        res = CliRunner().invoke(app, [*common, *cmd])
        assert res.exit_code == 2, (cmd, res.output, res.exception)
        assert res.output.startswith("error: ") and res.output.count("\n") == 1, (cmd, res.output)
        assert f"{path}:{WHERE[name][0]}:" in res.output
    assert (models / "sentiment" / "tiny" / "card.json").read_bytes() == card
    assert not (models / "sentiment" / "x").exists()


def test_cli_scores_a_file_with_a_byte_order_mark(models: Path, tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    rows = [{"text": f"shares surge {i}", "label": lab} for i, lab in enumerate(["positive", "negative", "neutral"])]
    path.write_text("\ufeff" + "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = CliRunner().invoke(app, ["--models-dir", str(models), "score", "--task", "sentiment", "--input", str(path)])
    assert res.exit_code == 0, res.output
    assert "(3 rows)" in res.output
