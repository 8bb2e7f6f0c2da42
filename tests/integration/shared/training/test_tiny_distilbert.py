"""Any local Hugging Face encoder folder trains: a tiny DistilBERT (no pooler, so its
``AutoModel`` class takes no ``add_pooling_layer``) with mean pooling, one step, then
exported (parity), quantized, evaluated and registered through the real CLI.

Before: ``TypeError: DistilBertModel.__init__() got an unexpected keyword argument
'add_pooling_layer'`` for every mean-pooling run (intent's default)."""

from __future__ import annotations

import json
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

pytestmark = pytest.mark.slow

WORDS = ["card", "lost", "balance", "transfer", "money", "help", "account", "pin", "fee", "refund"]


def _tiny_distilbert(path: Path) -> Path:
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    fast = tiny_tokenizer(WORDS)
    fast.save_pretrained(str(path))
    cfg = DistilBertConfig(
        vocab_size=len(fast), dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128
    )
    torch.manual_seed(0)
    DistilBertModel(cfg).save_pretrained(str(path))
    return path


def _intent_data(path: Path) -> Path:
    """Every intent label, enough rows of each for validation and test splits."""
    rows = [
        {"text": f"{WORDS[(i + j) % len(WORDS)]} {WORDS[j % len(WORDS)]} {label.replace('_', ' ')} {j}", "label": label}
        for i, label in enumerate(LABELS["intent"])
        for j in range(8)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_distilbert_encoder_trains_with_mean_pooling_and_exports(tmp_path: Path) -> None:
    base = _tiny_distilbert(tmp_path / "distil")
    data = _intent_data(tmp_path / "intent.jsonl")
    models = tmp_path / "models"
    args = ["--models-dir", str(models), "train", "--task", "intent", "--base", str(base), "--data", str(data)]
    args += ["--epochs", "1", "--max-steps", "1", "--batch-size", "8", "--max-length", "16", "--no-fp16"]
    args += ["--version", "d1", "--out", str(tmp_path / "run"), "--no-progress"]
    res = CliRunner().invoke(app, args)  # intent's default pooling: mean
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 0, res.output

    entry = Registry(models).get("intent", "d1")
    card = entry.card
    assert card["training"]["config"]["pooling"] == "mean"
    assert card["export"]["parity"]["max_abs_logit_diff"] <= 1e-4
    assert card["export"]["parity"]["tokenizer_json_matches"] is True
    assert entry.labels == LABELS["intent"]
    assert set(entry.available_variants()) >= {"fp32", "int8"}
    Registry(models).verify(entry, entry.available_variants())
    meta = json.loads((tmp_path / "run" / "checkpoint" / "tonewatch_head.json").read_text(encoding="utf-8"))
    assert meta["pooling"] == "mean"
    assert json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())["model_type"] == "distilbert"
