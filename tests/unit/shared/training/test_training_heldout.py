"""Rows a model was trained or selected on are never reported as held out: `score` counts
them and `--record` refuses such a file; `evaluate --data` says when its test split is not
held out from the model (the splits are made within the data loaded)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from services.cli.models import app
from shared.inference.registry import Registry, RegistryError, default_models_dir
from shared.training.datasets import DATA_DIR, load_file, load_task
from shared.training.heldout import texts_record, training_rows
from shared.training.pipeline import _eval_description, held_out_check

SENTIMENT = DATA_DIR / "sentiment"


def _shipped_card(task: str) -> dict[str, Any]:
    try:
        return dict(Registry(default_models_dir()).promoted(task).card)
    except RegistryError:
        pytest.skip(f"no promoted {task} model in this checkout")


def test_the_training_rows_of_a_shipped_model_are_rebuilt_from_its_recorded_files() -> None:
    card = _shipped_card("sentiment")
    rows = training_rows(card)
    assert not isinstance(rows, str), rows
    part1 = load_file(SENTIMENT / "guardian_gold_part1.csv", "sentiment")
    assert rows.overlap([ex.text for ex in part1]) == 480  # of 600: its other 120 rows are test rows
    assert held_out_check(card, load_task("sentiment"))[0] == 0  # its own test split is held out


def test_evaluate_on_one_part_is_not_called_held_out_when_its_rows_were_trained_on() -> None:
    card = _shipped_card("sentiment")
    bundle = load_task("sentiment", [SENTIMENT / "guardian_gold_part4.csv"])  # split within part 4 alone
    overlap, basis = held_out_check(card, bundle)
    assert (overlap, len(bundle.test)) == (11, 120)
    text = _eval_description("sentiment", bundle, overlap, basis)
    assert not text.startswith("held-out") and "NOT held out: 11 of its 120 rows" in text


def test_the_intent_challenge_set_overlaps_the_shipped_model_on_16_rows() -> None:
    card = _shipped_card("intent")
    rows = training_rows(card)
    assert not isinstance(rows, str), rows
    challenge = load_file(DATA_DIR / "intent" / "extra" / "challenge_independent.jsonl", "intent")
    assert rows.overlap([ex.text for ex in challenge]) == 16


def test_recorded_digests_match_normalised_text_and_a_changed_file_is_reported(tmp_path: Path) -> None:
    record = texts_record(["Shares surge!", "oil  crash"], "test")
    rows = training_rows({"training_texts": record})
    assert not isinstance(rows, str)
    assert rows.overlap(["shares SURGE", "oil crash.", "oil crashes"]) == 2 and record["rows"] == 2
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "a", "label": "neutral"}) + "\n", encoding="utf-8")
    card = {"task": "sentiment", "data_sources": [{"path_or_package": str(data), "sha256": "0" * 64}]}
    assert "changed since training" in str(training_rows(card))
    card["data_sources"] = [{"path_or_package": str(tmp_path / "gone.jsonl"), "sha256": "0" * 64}]
    assert "is not here" in str(training_rows(card))


def test_score_record_refuses_a_training_file_and_score_counts_its_rows(tmp_path: Path) -> None:
    """`score --input guardian_gold_part1.csv --record` filed 600 rows (480 trained or selected
    on) under "Labelled files outside the training data"."""
    card = _shipped_card("sentiment")
    shipped = default_models_dir() / "sentiment" / str(card["version"])
    models = tmp_path / "models"
    copy = models / "sentiment" / str(card["version"])
    copy.mkdir(parents=True)
    for name in ("card.json", "CARD.md", "labels.json", "tokenizer.json"):  # no model file needed to refuse
        shutil.copy2(shipped / name, copy / name)
    part1 = SENTIMENT / "guardian_gold_part1.csv"
    base = ["--models-dir", str(models), "score", "--task", "sentiment", "--version", str(card["version"])]
    res = CliRunner().invoke(app, [*base, "--input", str(part1), "--record"])
    assert res.exit_code == 2, res.output
    assert "480 of the 600 rows" in res.output and "training/validation data" in res.output
    assert (copy / "card.json").read_bytes() == (shipped / "card.json").read_bytes()
    res = CliRunner().invoke(app, [*base, "--input", str(part1), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["training_overlap"] == 480
    assert "NOT held out: 480 of these 600 rows" in res.output
