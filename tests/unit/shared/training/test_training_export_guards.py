"""`models export --from` refuses what is not a usable checkpoint, leaves no folder behind,
never mixes another export's files into a card; `evaluate --data` keeps only figures of the
data it used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from tiny_models import tiny_checkpoint, tiny_data
from typer.testing import CliRunner

from services.cli.models import app
from shared.inference.registry import Registry


def _export(models: Path, ckpt: Path, data: Path, version: str = "v1", *extra: str) -> tuple[int, str]:
    args = ["--models-dir", str(models), "export", "--task", "sentiment", "--from", str(ckpt)]
    args += ["--version", version, "--data", str(data), "--max-length", "16", *extra]
    res = CliRunner().invoke(app, args)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


def test_a_checkpoint_without_tokenizer_files_is_refused(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "ck", tokenizer=False)
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.json", "model.safetensors"]
    models = tmp_path / "models"
    code, out = _export(models, ckpt, tiny_data(tmp_path / "d.jsonl"))
    assert code == 2, out
    assert "no tokenizer files" in out and "Traceback" not in out
    assert not (models / "sentiment" / "v1").exists()


def test_a_tokenizer_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "ck", vocab_size=30522)  # a small tokenizer on a 30522-row embedding
    models = tmp_path / "models"
    code, out = _export(models, ckpt, tiny_data(tmp_path / "d.jsonl"))
    assert code == 2, out
    assert "vocab_size (30522)" in out
    assert not (models / "sentiment").exists() or not any((models / "sentiment").iterdir())


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (lambda p: p / "nosuchdir", 1, "does not exist"),
        (lambda p: (p / "empty").mkdir() or p / "empty", 2, "no config.json"),
        (lambda p: _no_weights(p / "noweights"), 2, "no model weights"),
    ],
)
def test_a_path_that_is_not_a_checkpoint_is_a_local_error(tmp_path: Path, make: object, code: int, words: str) -> None:
    ckpt = make(tmp_path)  # type: ignore[operator]
    models = tmp_path / "models"
    got, out = _export(models, ckpt, tiny_data(tmp_path / "d.jsonl"))
    assert got == code, out
    assert words in out and "cannot reach" not in out and "huggingface" not in out
    assert not (models / "sentiment" / "v1").exists()


def _no_weights(path: Path) -> Path:
    ckpt = tiny_checkpoint(path)
    (ckpt / "model.safetensors").unlink()
    return ckpt


def test_export_refuses_a_folder_left_by_an_interrupted_export(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "ck")
    data = tiny_data(tmp_path / "d.jsonl")
    models = tmp_path / "models"
    stale = models / "sentiment" / "v1"
    stale.mkdir(parents=True)
    (stale / "model.fp16.onnx").write_bytes(b"another checkpoint's graph")
    code, out = _export(models, ckpt, data, "v1", "--no-fp16")
    assert code == 1 and "without a card" in out, out
    assert [p.name for p in stale.iterdir()] == ["model.fp16.onnx"]

    # an empty folder is fine; --no-fp16 registers no fp16 variant
    (stale / "model.fp16.onnx").unlink()
    code, out = _export(models, ckpt, data, "v1", "--no-fp16")
    assert code == 0, out
    entry = Registry(models).get("sentiment", "v1")
    assert entry.available_variants() == ("fp32", "int8")
    assert "model.fp16.onnx" not in entry.card["artifacts"]
    assert entry.card["max_positions"] == 128


def test_evaluate_on_other_data_drops_figures_of_variants_not_re_evaluated(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "ck")
    data = tiny_data(tmp_path / "d.jsonl")
    models = tmp_path / "models"
    assert _export(models, ckpt, data, "v1", "--no-fp16")[0] == 0
    reg = Registry(models)
    entry = reg.get("sentiment", "v1")
    first = entry.card["evaluation"]
    assert str(data) in first["description"] and "Guardian" not in first["description"]
    # as shipped: no fp32 file; re-evaluating on the same data keeps its fp32 figures
    (entry.path / "model.fp32.onnx").unlink()
    common = ["--models-dir", str(models), "evaluate", "--task", "sentiment", "--version", "v1"]
    res = CliRunner().invoke(app, [*common, "--data", str(data)])
    assert res.exit_code == 0, res.output
    card = reg.get("sentiment", "v1").card
    assert "fp32" in card["metrics"] and card["int8_gap_points"] is not None

    other = tmp_path / "other.jsonl"
    rows = [{"text": f"record profits {i}", "label": "positive"} for i in range(10)]
    rows += [{"text": f"oil crash {i}", "label": "negative"} for i in range(10)]
    other.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = CliRunner().invoke(app, [*common, "--data", str(other)])
    assert res.exit_code == 0, res.output
    card = reg.get("sentiment", "v1").card
    assert set(card["metrics"]) == {"int8"}, card["metrics"].keys()
    assert card["evaluation"]["n"] == card["metrics"]["int8"]["n"]
    assert str(other) in card["evaluation"]["description"] and str(data) not in card["evaluation"]["description"]
    assert card["int8_gap_points"] is None
