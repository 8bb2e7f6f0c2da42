"""``GET /v1/status`` shows what a base model is, never where a server kept it: a card's
``base_model.name`` came from ``config.json``'s ``_name_or_path``, which transformers 4.x
set to the folder a checkpoint was loaded from."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from services.api.deps import Deps
from services.api.routes_ops import base_model_view, model_info
from shared.inference.registry import Registry

CHECKPOINT = "/srv/ml/alice/runs/finbert-ft/checkpoint-500"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (CHECKPOINT, "checkpoint-500"),
        (CHECKPOINT + "/", "checkpoint-500"),
        ("./runs/finbert-ft", "finbert-ft"),
        ("../finbert-ft", "finbert-ft"),
        ("~/models/finbert", "finbert"),
        ("~alice", None),
        ("runs/alice/finbert-ft", "finbert-ft"),
        ("C:\\Users\\alice\\finbert", "finbert"),
        ("D:/models/finbert", "finbert"),
        ("/", None),
        (".", None),
        ("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        ("ProsusAI/finbert", "ProsusAI/finbert"),
        ("bert-base-uncased", "bert-base-uncased"),
        ("random tiny BERT (tests)", "random tiny BERT (tests)"),
    ],
)
def test_a_base_model_name_that_is_a_path_shows_its_last_folder_only(name: str, shown: str | None) -> None:
    view = base_model_view({"name": name, "path": "/srv/ml/base", "short": "bert", "layers": 12})
    assert view == {"name": shown, "short": "bert", "layers": 12}


def test_the_status_of_a_promoted_model_shows_no_server_path(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    (tmp_path / "model.int8.onnx").write_bytes(b"\x08\x07onnx-placeholder")
    (tmp_path / "tokenizer.json").write_text("{}")
    files = {name: tmp_path / name for name in ("model.int8.onnx", "tokenizer.json")}
    base = {"path": CHECKPOINT, "name": CHECKPOINT, "model_type": "bert", "short": "bert"}  # a card written before
    registry.register("sentiment", "v1", {"name": "tonewatch-sentiment", "base_model": base}, files=files)
    registry.promote("sentiment", "v1")
    info = model_info(cast(Deps, SimpleNamespace(registry=registry)), "sentiment")
    assert info["base_model"] == {"name": "checkpoint-500", "short": "bert", "model_type": "bert"}
    assert "/srv/" not in repr(info)


@pytest.mark.parametrize("version", ["v1", "v9"])
def test_the_status_of_a_model_that_cannot_be_served_shows_no_server_path(tmp_path: Path, version: str) -> None:
    """A missing or broken promoted model says why (the task, version, what is wrong)
    without the models' folder, which every registry message names."""
    root = tmp_path / "srv" / "secret-models"
    registry = Registry(root)
    (tmp_path / "model.int8.onnx").write_bytes(b"\x08\x07onnx-placeholder")
    (tmp_path / "tokenizer.json").write_text("{}")
    files = {name: tmp_path / name for name in ("model.int8.onnx", "tokenizer.json")}
    registry.register("sentiment", "v1", {"name": "tonewatch-sentiment"}, files=files)
    registry.promote("sentiment", "v1")
    (root / "sentiment" / "PROMOTED").write_text(version if version != "v1" else "v1\n")
    if version == "v1":
        (root / "sentiment" / "v1" / "card.json").write_text("{not json")
    info = model_info(cast(Deps, SimpleNamespace(registry=registry)), "sentiment")
    assert info["promoted"] is False
    assert "secret-models" not in repr(info) and str(tmp_path) not in repr(info)
    assert version in info["error"] and "models" in info["error"]


def test_a_relative_models_folder_is_not_replaced_inside_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    registry = Registry(Path("m"))
    info = model_info(cast(Deps, SimpleNamespace(registry=registry)), "sentiment")
    assert info["promoted"] is False
    assert "promoted sentiment model" in info["error"] and "tonewatch models promote" in info["error"]
    assert str(tmp_path) not in info["error"]
