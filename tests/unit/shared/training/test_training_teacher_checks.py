"""`models train --teacher` checks the teacher up front, as `export --from` checks its folder.

Before: a teacher whose config.json declares 3 labels over a 2-row head, a truncated
model.safetensors, a corrupt pytorch_model.bin or other label names than the task's failed
with transformers' size-mismatch report or a raw exception (exit 1, a traceback for the
weight files), after the training data were loaded, a version chosen and the student built.
Now: exit 2, one line naming the teacher, before the data are read or a folder is claimed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_models import TINY_WORDS, tiny_checkpoint, tiny_data, tiny_tokenizer
from typer.testing import CliRunner

from services.cli.models import app
from shared.labels import LABELS

SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def _encoder(path: Path) -> Path:
    """A tiny BERT encoder without a head: the student's base (and a teacher lacking its head)."""
    import torch
    from transformers import BertConfig, BertModel

    tok = tiny_tokenizer(TINY_WORDS)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), max_position_embeddings=128, **SMALL)).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def _edit_config(ckpt: Path, names: list[str]) -> Path:
    config = json.loads((ckpt / "config.json").read_text(encoding="utf-8"))
    config["id2label"] = {str(i): n for i, n in enumerate(names)}
    config["label2id"] = {n: i for i, n in enumerate(names)}
    (ckpt / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return ckpt


def _three_labels_over_two(path: Path) -> Path:
    """A 2-label classifier whose config.json was edited to name the 3 sentiment labels."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = tiny_tokenizer(TINY_WORDS)
    cfg = BertConfig(vocab_size=len(tok), max_position_embeddings=128, num_labels=2, **SMALL)
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return _edit_config(path, list(LABELS["sentiment"]))


def _truncated_safetensors(path: Path) -> Path:
    ckpt = tiny_checkpoint(path)
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:2000])  # an interrupted copy
    return ckpt


def _corrupt_bin_only(path: Path) -> Path:
    ckpt = tiny_checkpoint(path)
    (ckpt / "model.safetensors").unlink()
    (ckpt / "pytorch_model.bin").write_bytes(b"<html>not found</html>")  # a saved error page
    return ckpt


def _intent_teacher(path: Path) -> Path:
    return tiny_checkpoint(path, "intent")


def _abbreviated_labels(path: Path) -> Path:
    return _edit_config(tiny_checkpoint(path), ["neg", "neu", "pos"])


def _no_head(path: Path) -> Path:
    return _encoder(path)


def _no_tokenizer(path: Path) -> Path:
    return tiny_checkpoint(path, tokenizer=False)


def _train(tmp_path: Path, teacher: Path, data: Path, *extra: str) -> tuple[int, str]:
    base = _encoder(tmp_path / "base")
    args = ["--models-dir", str(tmp_path / "models"), "train", "--task", "sentiment", "--base", str(base)]
    args += ["--data", str(data), "--teacher", str(teacher), "--out", str(tmp_path / "run")]
    args += ["--epochs", "1", "--max-steps", "2", "--batch-size", "8", "--max-length", "16", "--no-progress"]
    res = CliRunner().invoke(app, [*args, "--no-fp16", *extra])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, " ".join(res.output.split())


def _nothing_left(tmp_path: Path) -> bool:
    models = tmp_path / "models" / "sentiment"
    return not (tmp_path / "run").exists() and (not models.exists() or not any(models.iterdir()))


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_three_labels_over_two, "config.json declares 3 labels (negative, neutral, positive) but the classifier"),
        (_truncated_safetensors, "model.safetensors cannot be read (Error while deserializing header"),
        (_corrupt_bin_only, "pytorch_model.bin cannot be read"),
        (_intent_teacher, "not the sentiment labels"),
        (_abbreviated_labels, "predicts ['neg', 'neu', 'pos'], not the sentiment labels"),
        (_no_head, "is not a fine-tuned classifier: head weights classifier.bias, classifier.weight missing"),
        (_no_tokenizer, "has no tokenizer files"),
    ],
)
def test_an_unusable_teacher_is_invalid_input_before_anything_is_claimed(
    tmp_path: Path, make: object, words: str
) -> None:
    teacher = make(tmp_path / "teacher")  # type: ignore[operator]
    code, out = _train(tmp_path, teacher, tiny_data(tmp_path / "d.jsonl"))
    assert code == 2, out
    assert f"teacher {teacher}" in out and words in out, out
    assert "Traceback" not in out and "ignore_mismatched_sizes" not in out
    assert _nothing_left(tmp_path)


def test_the_teacher_is_checked_before_the_training_data_are_read(tmp_path: Path) -> None:
    """Before: the malformed data file was reported first (the teacher was loaded after it)."""
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "shares surge"', encoding="utf-8")  # not even JSON
    teacher = _truncated_safetensors(tmp_path / "teacher")
    code, out = _train(tmp_path, teacher, data)
    assert code == 2, out
    assert f"teacher {teacher / 'model.safetensors'} cannot be read" in out
    assert _nothing_left(tmp_path)


def test_teacher_check_accepts_a_usable_teacher(tmp_path: Path) -> None:
    """Labels in another order and case, or as our mean-pooling head saves them, pass."""
    from shared.training.modeling import build_model, save_checkpoint
    from shared.training.train import check_teacher

    check_teacher(tiny_checkpoint(tmp_path / "plain"), "sentiment")
    check_teacher(_edit_config(tiny_checkpoint(tmp_path / "upper"), ["Positive", "Negative", "Neutral"]), "sentiment")
    mean = tmp_path / "mean"
    save_checkpoint(
        build_model(_encoder(tmp_path / "enc"), "sentiment", "mean"),
        tiny_tokenizer(TINY_WORDS),
        mean,
        "sentiment",
        "mean",
    )
    check_teacher(mean, "sentiment")


def test_a_usable_tiny_teacher_still_teaches(tmp_path: Path) -> None:
    teacher = _edit_config(tiny_checkpoint(tmp_path / "teacher"), ["positive", "negative", "neutral"])
    code, out = _train(tmp_path, teacher, tiny_data(tmp_path / "d.jsonl"), "--checkpoint-only")
    assert code == 0, out
    meta = json.loads((tmp_path / "run" / "checkpoint" / "tonewatch_train.json").read_text(encoding="utf-8"))
    assert meta["config"]["teacher"] == str(teacher)
