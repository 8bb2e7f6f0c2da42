"""The folder ``predict_file`` writes its output in is that of the file a symbolic link
names (:func:`output_folder`), and it is created there when missing.

Before: the link's own folder was created, and the temporary file then opened in the
missing folder of its target: ``FileNotFoundError``, after the model had loaded."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.labels import SENTIMENT_LABELS
from shared.training.metrics import FloatArray
from shared.training.predict import output_folder, predict_file


def _scorer(texts: Sequence[str]) -> FloatArray:
    out = np.full((len(texts), 3), 0.1)
    out[:, 1] = 0.8
    return out


def test_output_folder_is_the_folder_of_a_links_target(tmp_path: Path) -> None:
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "data" / "real.jsonl")
    assert output_folder(link) == Path(os.path.realpath(tmp_path / "data"))
    assert output_folder(tmp_path / "a" / "o.jsonl") == Path(os.path.realpath(tmp_path)) / "a"


def test_a_link_to_a_file_in_a_missing_folder_is_written_there(tmp_path: Path) -> None:
    src, link = tmp_path / "in.jsonl", tmp_path / "link.jsonl"
    src.write_text('{"id": 1, "text": "fine"}\n', encoding="utf-8")
    target = tmp_path / "data" / "sub" / "real.jsonl"
    link.symlink_to(target)
    stats = predict_file(_scorer, SENTIMENT_LABELS, src, link)
    assert stats.predicted == 1
    assert json.loads(target.read_text(encoding="utf-8"))["id"] == 1 and link.is_symlink()
    assert sorted(p.name for p in target.parent.iterdir()) == ["real.jsonl"]
