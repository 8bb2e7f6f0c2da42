from __future__ import annotations

from pathlib import Path

from shared import schemas


def test_checked_in_schemas_match_contracts() -> None:
    assert schemas.drift() == [], "run `tonewatch contracts export`"


def test_drift_detects_a_stale_file(tmp_path: Path) -> None:
    schemas.write(tmp_path)
    assert schemas.drift(tmp_path) == []
    (tmp_path / "raw_news.v1.json").write_text("{}")
    (tmp_path / "old.v0.json").write_text("{}")
    assert schemas.drift(tmp_path) == ["old.v0.json", "raw_news.v1.json"]
