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


def test_export_with_no_test_rows_is_refused_and_leaves_no_folder(tmp_path: Path) -> None:
    """Authored rows only: nothing to evaluate on. It crashed after exporting (ValueError in the
    metrics) and left a version folder with ONNX files and no card, whose name was then refused."""
    ckpt = tiny_checkpoint(tmp_path / "ck")
    data = tmp_path / "authored.jsonl"
    rows = [
        {"text": f"{lab} news {i}", "label": lab, "source": "authored"}
        for lab in ("negative", "positive")
        for i in range(6)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    models = tmp_path / "models"
    for _ in range(2):  # the same version again: refused for the same reason, not as taken
        code, out = _export(models, ckpt, data, "v1", "--no-fp16")
        assert code == 2 and out.startswith("error: no test rows:"), out
        assert not (models / "sentiment" / "v1").exists()


def test_the_export_reproduce_command_is_complete_and_runs_as_written(tmp_path: Path) -> None:
    import shlex

    ckpt = tiny_checkpoint(tmp_path / "my checkpoint")  # a path that needs quoting
    data = tiny_data(tmp_path / "d.jsonl")
    models = tmp_path / "models"
    assert _export(models, ckpt, data, "v1", "--no-fp16")[0] == 0
    reproduce = Registry(models).get("sentiment", "v1").card["reproduce"]
    assert reproduce == (
        f"tonewatch models --models-dir {shlex.quote(str(models.resolve()))} export --task sentiment "
        f"--from {shlex.quote(str(ckpt.resolve()))} --max-length 16 --data {shlex.quote(str(data.resolve()))} --no-fp16"
    )
    argv = shlex.split(reproduce)
    res = CliRunner().invoke(app, argv[2:])
    assert res.exit_code == 0, res.output  # a new version: none is named
    again = [e for e in Registry(models).list("sentiment") if e.version != "v1"]
    assert len(again) == 1 and again[0].card["max_length"] == 16
    assert again[0].available_variants() == ("fp32", "int8")


def _unnamed_checkpoint(path: Path, names: list[str]) -> Path:
    ckpt = tiny_checkpoint(path)
    config = json.loads((ckpt / "config.json").read_text(encoding="utf-8"))
    config["id2label"] = {str(i): n for i, n in enumerate(names)}
    config["label2id"] = {n: i for i, n in enumerate(names)}
    (ckpt / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return ckpt


def test_a_checkpoint_with_unnamed_labels_needs_labels(tmp_path: Path) -> None:
    """LABEL_0..LABEL_2 were taken to be in the task's order, with no warning."""
    import numpy as np

    from shared.training.evaluate import OnnxClassifier
    from shared.training.train import teacher_logits

    ckpt = _unnamed_checkpoint(tmp_path / "ck", ["LABEL_0", "LABEL_1", "LABEL_2"])
    data = tiny_data(tmp_path / "d.jsonl")
    models = tmp_path / "models"
    code, out = _export(models, ckpt, data, "v1", "--no-fp16")
    assert code == 2, out
    assert "does not name its labels (LABEL_0, LABEL_1, LABEL_2)" in out and "--labels" in out
    assert not (models / "sentiment" / "v1").exists()

    order = ["positive", "negative", "neutral"]  # what the checkpoint's logits are
    code, out = _export(models, ckpt, data, "v1", "--no-fp16", "--labels", ",".join(order))
    assert code == 0, out
    entry = Registry(models).get("sentiment", "v1")
    assert entry.card["export"]["labels"] == {
        "checkpoint_labels": order,
        "source": "--labels",
        "logit_index": {"negative": 1, "neutral": 2, "positive": 0},
    }
    assert "--labels positive,negative,neutral" in entry.card["reproduce"]
    texts = ["shares surge", "oil crash", ""]
    named = _unnamed_checkpoint(tmp_path / "named", order)  # the same weights, named
    expected = teacher_logits(named, "sentiment", texts, 16)
    got = OnnxClassifier(entry.variant_path("fp32"), entry.tokenizer_path).logits(texts)
    assert np.abs(got - expected).max() < 1e-4


def test_teacher_labels_are_matched_as_export_matches_them(tmp_path: Path) -> None:
    """A teacher naming its labels "Positive", "Negative", "Neutral" was refused (case-sensitive
    check) although `export` packages the same checkpoint (names lower-cased)."""
    import numpy as np

    from shared.training.train import teacher_logits

    upper = _unnamed_checkpoint(tmp_path / "upper", ["Positive", "Negative", "Neutral"])
    lower = _unnamed_checkpoint(tmp_path / "lower", ["positive", "negative", "neutral"])
    texts = ["shares surge", "oil crash"]
    got = teacher_logits(upper, "sentiment", texts, 16)
    assert np.abs(got - teacher_logits(lower, "sentiment", texts, 16)).max() < 1e-6
    assert _export(tmp_path / "models", upper, tiny_data(tmp_path / "d.jsonl"), "v1", "--no-fp16")[0] == 0


def test_a_card_never_records_a_command_naming_its_own_version(tmp_path: Path) -> None:
    """Before: a reproduce command given with ``--version v1`` was recorded as given, and once
    v1 was registered it was refused as taken (the shipped cards had such commands)."""
    import shlex

    from shared.training.datasets import load_task
    from shared.training.pipeline import package

    ckpt = tiny_checkpoint(tmp_path / "ck")
    data = tiny_data(tmp_path / "d.jsonl")
    models = tmp_path / "models"
    command = shlex.join(["tonewatch", "models", "--models-dir", str(models), "export", "--task", "sentiment"])
    command += " " + shlex.join(
        ["--from", str(ckpt), "--version", "v1", "--max-length", "16", "--data", str(data), "--no-fp16"]
    )
    bundle = load_task("sentiment", [data])
    entry = package(
        Registry(models), "sentiment", "v1", ckpt, bundle, max_length=16, training={}, fp16=False, reproduce=command
    )
    reproduce = entry.card["reproduce"]
    assert reproduce == command.replace(" --version v1", "")
    assert reproduce in (entry.path / "CARD.md").read_text(encoding="utf-8")
    res = CliRunner().invoke(app, shlex.split(reproduce)[2:])  # as written
    assert res.exit_code == 0, res.output
    assert len(Registry(models).list("sentiment")) == 2
