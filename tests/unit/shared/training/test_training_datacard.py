"""data/DATA_CARD.md records the sha256 of every repository data file."""

from __future__ import annotations

from shared.inference.registry import sha256_file
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
