"""Tiny end-to-end run: train -> export (parity) -> quantize -> evaluate -> registry.

A 2-layer, 32-wide BERT with its own WordPiece tokenizer is built in a temporary
folder (so "any local encoder folder" is exercised and the run takes seconds),
trained for a few steps on synthetic headlines through the real CLI, then
predicted with, tampered with and refused.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from tiny_models import tiny_tokenizer
from typer.testing import CliRunner

from services.cli.models import app
from shared.inference.registry import Registry
from shared.labels import LABELS
from shared.training.datasets import load_task

pytestmark = pytest.mark.slow

WORDS = {
    "positive": ["surge", "record", "profits", "beat", "rally", "growth", "soar"],
    "negative": ["slump", "losses", "cuts", "crash", "warning", "fall", "jobs"],
    "neutral": ["holds", "meeting", "report", "names", "plans", "review", "talks"],
}
SUBJECTS = ["shares", "bank", "retailer", "ftse", "oil", "airline", "carmaker", "pound"]
ODD = ["", "x" * 20_000, "🙂🚀📉", "利润大幅增长", "Прибыль упала", "مرحبا", "  \n\t "]


def _tiny_encoder(path: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    fast = tiny_tokenizer(sorted({w for ws in WORDS.values() for w in ws} | set(SUBJECTS)))
    fast.save_pretrained(str(path))
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(cfg).save_pretrained(str(path))
    return path


def _data(path: Path) -> Path:
    rng = random.Random(0)
    rows = [
        {"text": f"{rng.choice(SUBJECTS)} {w} {rng.choice(SUBJECTS)} {i}", "label": lab}
        for lab, ws in WORDS.items()
        for i in range(20)
        for w in [ws[i % len(ws)]]
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _held_out(path: Path) -> Path:
    """Labelled rows none of which is in :func:`_data` (other numbers)."""
    rows = [
        {"text": f"{ws[i % len(ws)]} shares {100 + i}", "label": lab} for lab, ws in WORDS.items() for i in range(10)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_tiny_pipeline_end_to_end(tmp_path: Path) -> None:
    base = _tiny_encoder(tmp_path / "encoder")
    data = _data(tmp_path / "train.jsonl")
    models = tmp_path / "models"
    runner = CliRunner()
    args = [
        "--models-dir",
        str(models),
        "train",
        "--task",
        "sentiment",
        "--base",
        str(base),
        "--data",
        str(data),
        "--epochs",
        "2",
        "--max-steps",
        "6",
        "--batch-size",
        "8",
        "--max-length",
        "16",
        "--version",
        "t1",
        "--out",
        str(tmp_path / "run"),
        "--promote",
        "--no-progress",
        "--pooling",
        "mean",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output

    reg = Registry(models)
    entry = reg.promoted("sentiment")
    assert entry.version == "t1" and entry.labels == LABELS["sentiment"]
    assert set(entry.available_variants()) == {"fp32", "int8", "fp16"}
    card = entry.card
    assert card["export"]["parity"]["max_abs_logit_diff"] <= 1e-4
    assert card["export"]["parity"]["tokenizer_json_matches"] is True
    assert card["max_length"] == 16 and card["inputs"] == [
        "input_ids",
        "attention_mask",
    ]
    for variant in ("fp32", "int8"):
        m = card["metrics"][variant]
        assert m["n"] == card["evaluation"]["n"] > 0
        assert 0.0 <= m["macro_f1"] <= 1.0 and len(m["coverage"]) == 5
        assert m["confusion"]["labels"] == list(LABELS["sentiment"])
    assert "fp16" in card["metrics"]
    assert card["training"]["temperature"] > 0 and card["training"]["config"]["pooling"] == "mean"
    assert 0.0 <= card["metrics"]["int8"]["agreement_with_fp32"] <= 1.0
    assert card["data_sources"][0]["rows"] == 60
    assert (entry.path / "CARD.md").read_text().count("Where the model is weak") == 1
    reg.verify(entry, entry.available_variants())

    # list, evaluate and quantize on the registered version
    res = runner.invoke(app, ["--models-dir", str(models), "list", "--json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    assert listed[0]["version"] == "t1" and listed[0]["promoted"] is True
    common = ["--models-dir", str(models)]
    opts = ["--task", "sentiment", "--version", "t1", "--data", str(data)]
    assert runner.invoke(app, [*common, "evaluate", *opts]).exit_code == 0
    assert reg.get("sentiment", "t1").card["evaluation"]["description"].startswith("held-out test split of")
    # the training file less its test rows, split on its own: its test rows were all trained on
    sub = tmp_path / "sub.jsonl"
    held_back = {ex.text for ex in load_task("sentiment", [data]).test}
    rest = [r for r in map(json.loads, data.read_text().splitlines()) if r["text"] not in held_back]
    sub.write_text("".join(json.dumps(r) + "\n" for r in rest), encoding="utf-8")
    overlap = len(load_task("sentiment", [sub]).test)
    assert overlap > 0
    res = runner.invoke(app, [*common, "evaluate", "--task", "sentiment", "--version", "t1", "--data", str(sub)])
    assert res.exit_code == 0, res.output
    evaluation = reg.get("sentiment", "t1").card["evaluation"]
    assert evaluation["training_overlap"] == overlap and "held-out" not in evaluation["description"]
    assert f"NOT held out: {overlap} of its {evaluation['n']} rows" in evaluation["description"]
    assert "not a held-out evaluation" in res.output
    card_md = (entry.path / "CARD.md").read_text(encoding="utf-8")
    assert "## Test results (not held out)" in card_md and "## Held-out test results" not in card_md
    assert "--version" not in card["reproduce"]  # t1 is taken once registered: the command names none
    assert runner.invoke(app, [*common, "quantize", *opts]).exit_code == 0
    reg.verify(reg.get("sentiment", "t1"), ["int8", "fp16", "tokenizer.json"])

    # score a labelled file against every variant; the card stays as it is
    card_bytes = (entry.path / "card.json").read_bytes()
    res = runner.invoke(app, [*common, "score", "--task", "sentiment", "--input", str(data), "--json"])
    assert res.exit_code == 0, res.output
    scored = json.loads(res.stdout)
    assert scored["version"] == "t1" and scored["rows"] == 60
    for variant in ("fp32", "int8"):
        m = scored["metrics"][variant]
        assert m["n"] == 60 and 0.0 <= m["accuracy"] <= 1.0
        assert {lab: c["support"] for lab, c in m["per_class"].items()} == {lab: 20 for lab in LABELS["sentiment"]}
    assert (entry.path / "card.json").read_bytes() == card_bytes
    # the training file is no held-out set: its train/validation rows (16 of 20 per label) are
    # counted, and --record refuses to file it under "Labelled files outside the training data"
    assert scored["training_overlap"] == 48
    res = runner.invoke(app, [*common, "score", "--task", "sentiment", "--input", str(data), "--record"])
    assert res.exit_code == 2, res.output
    assert "48 of the 60 rows" in res.output and "sentiment/t1's training/validation data" in res.output
    assert (entry.path / "card.json").read_bytes() == card_bytes
    held = _held_out(tmp_path / "held.jsonl")
    res = runner.invoke(app, [*common, "score", "--task", "sentiment", "--input", str(held), "--json"])
    assert res.exit_code == 0, res.output
    held_scored = json.loads(res.stdout)
    assert held_scored["training_overlap"] == 0
    res = runner.invoke(app, [*common, "score", "--task", "sentiment", "--input", str(held), "--record"])
    assert res.exit_code == 0, res.output
    recorded = reg.get("sentiment", "t1")
    ext = recorded.card["external_evaluations"][str(held)]
    assert ext["rows"] == 30 and ext["metrics"]["int8"]["accuracy"] == held_scored["metrics"]["int8"]["accuracy"]
    assert ext["training_overlap"] == 0
    assert f"| `{held}` |" in (recorded.path / "CARD.md").read_text(encoding="utf-8")
    reg.verify(recorded, recorded.available_variants())
    # two versions side by side in one run (t2: the same checkpoint exported again, so the same figures)
    export = ["export", "--task", "sentiment", "--from", str(tmp_path / "run" / "checkpoint"), "--version", "t2"]
    res = runner.invoke(app, [*common, *export, "--data", str(data), "--max-length", "16", "--no-fp16"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, [*common, "score", "--task", "sentiment", "--input", str(data), "--version", "t1", "--version", "t2"]
    )
    assert res.exit_code == 0, res.output
    assert "t1 int8: accuracy" in res.output and "t2 int8: accuracy" in res.output
    res = runner.invoke(
        app,
        [*common, "score", "--task", "sentiment", "--input", str(data), "--version", "t1", "--version", "t2", "--json"],
    )
    both = json.loads(res.stdout)
    assert [d["version"] for d in both] == ["t1", "t2"]
    assert both[1]["metrics"]["fp32"]["accuracy"] == pytest.approx(both[0]["metrics"]["fp32"]["accuracy"])
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps({"text": f"shares soar {i}", "label": "positive"}) + "\n" for i in range(2)))
    res = runner.invoke(app, [*common, "score", "--task", "sentiment", "--input", str(few)])
    assert res.exit_code == 0 and "(2 rows; 2 of 3 labels absent, macro-F1 counts them as 0)" in res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "shares soar", "label": "bullish"}) + "\n", encoding="utf-8")
    res = runner.invoke(app, [*common, "score", "--task", "sentiment", "--input", str(bad)])
    assert res.exit_code == 2 and "bullish" in res.output and f"{bad}:1" in res.output

    # predict on odd inputs through the CLI
    src = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate(ODD)]
    lines += ["not json", json.dumps({"id": "n", "text": None})]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    res = runner.invoke(
        app,
        [
            *common,
            "predict",
            "--task",
            "sentiment",
            "--input",
            str(src),
            "--output",
            str(out),
        ],
    )
    assert res.exit_code == 1, res.output  # two rejected lines, as `ingest file` reports them
    assert f"{len(ODD)} predicted, 2 errors" in res.output
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == len(ODD) + 2
    for rec in recs[: len(ODD)]:
        assert rec["label"] in LABELS["sentiment"]
        assert set(rec["probs"]) == set(LABELS["sentiment"])
        assert abs(sum(rec["probs"].values()) - 1.0) < 1e-3
        assert rec["confidence"] == max(rec["probs"].values())
    assert "error" in recs[-2] and recs[-1]["id"] == "n" and "error" in recs[-1]

    # a tampered tokenizer is refused by the commands that rewrite the card (which
    # re-hash what is on disk): before, they recorded the tampered file's hash as good
    tok = entry.path / "tokenizer.json"
    original = tok.read_bytes()
    card_bytes = (entry.path / "card.json").read_bytes()
    tok.write_bytes(original + b" ")
    for cmd in (
        ["score", "--task", "sentiment", "--input", str(data), "--record"],
        ["evaluate", *opts],
        ["quantize", *opts],
    ):
        res = runner.invoke(app, [*common, *cmd])
        assert res.exit_code == 1, (cmd, res.output)
        assert "integrity check failed" in res.output and "tokenizer.json" in res.output, (cmd, res.output)
    assert (entry.path / "card.json").read_bytes() == card_bytes
    tok.write_bytes(original)

    # tampering is refused, by the registry and by the CLI
    int8 = entry.variant_path("int8")
    int8.write_bytes(int8.read_bytes()[:-1] + b"\0")
    res = runner.invoke(
        app,
        [
            *common,
            "predict",
            "--task",
            "sentiment",
            "--input",
            str(src),
            "--output",
            str(out),
        ],
    )
    assert res.exit_code == 1
    assert "integrity check failed" in res.output and "model.int8.onnx" in res.output
    res = runner.invoke(app, [*common, "promote", "--task", "sentiment", "--version", "t1"])
    assert res.exit_code == 1


def test_export_from_checkpoint_reorders_labels(tmp_path: Path) -> None:
    """`export --from` a checkpoint whose labels are in another order (FinBERT-like)."""
    from transformers import AutoModelForSequenceClassification

    base = _tiny_encoder(tmp_path / "encoder")
    order = ["positive", "negative", "neutral"]
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base),
        num_labels=3,
        id2label=dict(enumerate(order)),
        label2id={x: i for i, x in enumerate(order)},
    )
    ckpt = tmp_path / "finbert-like"
    model.save_pretrained(str(ckpt))
    (ckpt / "tokenizer.json").write_bytes((base / "tokenizer.json").read_bytes())
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if (base / name).is_file():
            (ckpt / name).write_bytes((base / name).read_bytes())
    data = _data(tmp_path / "d.jsonl")
    models = tmp_path / "models"
    res = CliRunner().invoke(
        app,
        [
            "--models-dir",
            str(models),
            "export",
            "--task",
            "sentiment",
            "--from",
            str(ckpt),
            "--version",
            "imp",
            "--data",
            str(data),
            "--max-length",
            "16",
            "--no-fp16",
        ],
    )
    assert res.exit_code == 0, res.output
    entry = Registry(models).get("sentiment", "imp")
    assert entry.available_variants() == ("fp32", "int8")

    import numpy as np
    from transformers import AutoTokenizer

    from shared.training.evaluate import OnnxClassifier
    from shared.training.train import predict_logits

    texts = ["shares surge", "oil crash warning", ""]
    tok = AutoTokenizer.from_pretrained(str(ckpt))
    torch_logits = predict_logits(model, tok, texts, 16)
    onnx_logits = OnnxClassifier(entry.variant_path("fp32"), entry.tokenizer_path).logits(texts)
    perm = [order.index(lab) for lab in LABELS["sentiment"]]
    assert np.abs(onnx_logits - torch_logits[:, perm]).max() < 1e-4


def test_distil_a_student_from_a_teacher_checkpoint(tmp_path: Path) -> None:
    """`train --teacher`: soft labels of another checkpoint (labels in another order) on the
    training texts and on unlabelled movie-review snippets; the card records the teacher."""
    from transformers import AutoModelForSequenceClassification

    from shared.training.train import predict_logits, teacher_logits

    base = _tiny_encoder(tmp_path / "encoder")
    order = ["positive", "negative", "neutral"]
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base), num_labels=3, id2label=dict(enumerate(order)), label2id={x: i for i, x in enumerate(order)}
    )
    teacher = tmp_path / "teacher"
    model.save_pretrained(str(teacher))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (base / name).is_file():
            (teacher / name).write_bytes((base / name).read_bytes())
    import numpy as np
    from transformers import AutoTokenizer

    texts = ["shares surge", "oil crash warning", ""]
    perm = [order.index(lab) for lab in LABELS["sentiment"]]
    expected = predict_logits(model, AutoTokenizer.from_pretrained(str(teacher)), texts, 16)[:, perm]
    assert np.abs(teacher_logits(teacher, "sentiment", texts, 16) - expected).max() < 1e-5

    data = _data(tmp_path / "d.jsonl")
    models = tmp_path / "models"
    common = ["--models-dir", str(models), "train", "--task", "sentiment", "--base", str(base), "--data", str(data)]
    small = ["--epochs", "1", "--max-steps", "4", "--batch-size", "8", "--max-length", "16", "--no-progress"]
    kd = ["--teacher", str(teacher), "--distill-alpha", "0.3", "--transfer-reviews", "20"]
    kd += ["--no-fp16", "--version", "kd", "--out", str(tmp_path / "run")]
    res = CliRunner().invoke(app, [*common, *small, *kd])
    assert res.exit_code == 0, res.output
    entry = Registry(models).get("sentiment", "kd")
    training = entry.card["training"]
    assert training["config"]["teacher"] == str(teacher) and training["config"]["distill_alpha"] == 0.3
    assert training["data"]["transfer_reviews"] == 20
    assert set(training["teacher"]["weights_sha256"]) == {"model.safetensors"}
    assert "rotten_tomatoes_reviews_unlabelled" in {s["name"] for s in entry.card["data_sources"]}
    assert "--teacher" in entry.card["reproduce"] and "--transfer-reviews 20" in entry.card["reproduce"]
    Registry(models).verify(entry, entry.available_variants())

    def said(output: str) -> str:  # typer boxes and wraps usage errors
        return " ".join(output.replace("│", " ").split())

    # a teacher of our own: trained, kept as a checkpoint, not registered
    res = CliRunner().invoke(
        app, [*common, *small, "--checkpoint-only", "--version", "tc", "--out", str(tmp_path / "tc")]
    )
    assert res.exit_code == 0, res.output
    assert "not registered" in said(res.output) and (tmp_path / "tc" / "checkpoint" / "config.json").is_file()
    test_scores = json.loads((tmp_path / "tc" / "checkpoint" / "tonewatch_train.json").read_text())["test"]
    assert test_scores["n"] > 0 and 0.0 <= test_scores["macro_f1"] <= 1.0
    assert f"test ({test_scores['n']} rows, fp32) accuracy" in said(res.output)
    assert [e.version for e in Registry(models).list("sentiment")] == ["kd"]
    res = CliRunner().invoke(app, [*common, *small, "--checkpoint-only", "--promote"])
    assert res.exit_code == 2 and "--checkpoint-only" in said(res.output)

    res = CliRunner().invoke(app, [*common, *small, "--transfer-reviews", "5"])
    assert res.exit_code == 2 and "needs --teacher" in said(res.output)
    res = CliRunner().invoke(app, [*common, *small, "--teacher", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "not a checkpoint folder" in said(res.output)
    intent_teacher = tmp_path / "intent-teacher"
    AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=len(LABELS["intent"])).save_pretrained(
        str(intent_teacher)
    )
    (intent_teacher / "tokenizer.json").write_bytes((base / "tokenizer.json").read_bytes())
    res = CliRunner().invoke(app, [*common, *small, "--teacher", str(intent_teacher)])
    assert res.exit_code == 2 and "not the sentiment labels" in said(res.output)


def test_no_validation_when_allowed_and_the_reproduce_command_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --allow-no-validation the last epoch's weights are kept and no temperature is
    fitted (before: epoch-1 weights, "val macro-F1 0.0" each epoch). The card's reproduce
    command named the version it had just registered, so it failed after training."""
    import shlex

    from shared.training import pipeline

    monkeypatch.setattr(pipeline, "RUNS_DIR", tmp_path / "runs")  # where a run without --out works
    base = _tiny_encoder(tmp_path / "encoder")
    rows = [{"text": f"{ws[i]} {SUBJECTS[i]} {i}", "label": lab} for lab, ws in WORDS.items() for i in range(3)]
    rows += [
        {"text": f"{SUBJECTS[i % 8]} {ws[i % 7]} {i}", "label": lab, "source": "authored"}
        for lab, ws in WORDS.items()
        for i in range(10)
    ]
    data = tmp_path / "few.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    models = tmp_path / "models"
    common = ["--models-dir", str(models)]
    args = ["train", "--task", "sentiment", "--base", str(base), "--data", str(data), "--epochs", "2"]
    args += ["--batch-size", "8", "--max-length", "16", "--pooling", "mean", "--no-fp16", "--no-progress"]
    res = CliRunner().invoke(app, [*common, *args, "--version", "t1", "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and "no validation rows" in res.output, res.output
    res = CliRunner().invoke(app, [*common, *args, "--version", "t1", "--allow-no-validation"])
    assert res.exit_code == 0, res.output
    card = Registry(models).get("sentiment", "t1").card
    assert sum(card["data_splits"]["validation"].values()) == 0 and card["evaluation"]["n"] == 3
    training = card["training"]
    assert training["best_val_macro_f1"] is None and training["temperature"] == 1.0
    assert [h["val_macro_f1"] for h in training["history"]] == [None, None]
    assert training["best_epoch"] == training["history"][-1]["epoch"] == 2.0

    reproduce = card["reproduce"]
    assert "--version" not in reproduce and "--allow-no-validation" in reproduce and "--no-fp16" in reproduce
    argv = shlex.split(reproduce)
    assert argv[:5] == ["tonewatch", "models", "--models-dir", str(models.resolve()), "train"]  # its registry
    res = CliRunner().invoke(app, [*argv[2:], "--no-progress"])
    assert res.exit_code == 0, res.output
    again = [e for e in Registry(models).list("sentiment") if e.version != "t1"]
    assert len(again) == 1 and again[0].card["training"]["history"] == training["history"]
