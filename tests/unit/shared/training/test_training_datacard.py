"""data/DATA_CARD.md records the sha256 of every repository data file."""

from __future__ import annotations

from shared.inference.registry import sha256_file
from shared.training.agreement import cohen_kappa, compare, describe, shipped_agreement
from shared.training.datacard import challenge_overlap, describe_challenge_overlap
from shared.training.datasets import DATA_DIR, default_files


def test_data_card_hashes_are_current() -> None:
    card = DATA_DIR / "DATA_CARD.md"
    text = card.read_text(encoding="utf-8")
    files = default_files("sentiment") + default_files("intent")
    assert files, "no data files"
    for path in files:
        rel = path.relative_to(DATA_DIR.parent)
        assert f"`{rel}`" in text, f"{rel} missing from {card}"
        assert sha256_file(path) in text, f"{rel} changed: run `python -m shared.training.datacard`"


def test_the_agreement_figures_in_the_data_card_are_computed_from_the_files() -> None:
    text = (DATA_DIR / "DATA_CARD.md").read_text(encoding="utf-8")
    a = shipped_agreement()
    assert a.rows == 480
    assert describe(a) in text, "agreement figures changed: run `python -m shared.training.datacard`"


def test_cohen_kappa_and_agreement_on_a_known_table() -> None:
    # gold: 20 negative, 20 positive; second: 15/5 and 5/15 -> agreed 0.75, kappa 0.5
    gold = {i: "negative" for i in range(20)} | {i: "positive" for i in range(20, 40)}
    second = {i: ("negative" if i < 15 or 35 <= i else "positive") for i in range(40)}
    a = compare(gold, second)
    assert a.rows == 40 and a.agreed == 0.75 and abs(a.kappa - 0.5) < 1e-12
    assert abs(a.macro_f1 - 0.75) < 1e-12  # over the two labels used, not three
    assert cohen_kappa([0, 1, 2], [0, 1, 2], 3) == 1.0
    assert sorted(a.disagreements) == [("negative", "positive", 5), ("positive", "negative", 5)]
    assert "gold `negative` vs second `positive` (5)" in describe(a)


def test_the_challenge_overlap_in_the_data_card_is_computed_from_the_files() -> None:
    """The card said 49 of the 315 challenge rows occur in parts 1-3; measured (normalised
    text, as the splits are deduplicated): 23, 16 in train/validation and 7 in test."""
    counts = challenge_overlap()
    assert counts == (315, 16, 7)
    text = " ".join((DATA_DIR / "DATA_CARD.md").read_text(encoding="utf-8").split())
    assert " ".join(describe_challenge_overlap(*counts).split()) in text
    assert "23 of its 315 rows" in text and "49 of its" not in text
