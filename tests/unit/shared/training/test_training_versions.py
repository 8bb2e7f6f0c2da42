"""Runs without --version claim their version folder: two at once never share one, and a
failed run removes only the folder it made."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from shared.inference.registry import Registry, RegistryError
from shared.training import pipeline
from shared.training.datasets import DatasetBundle, Example
from shared.training.pipeline import PipelineOptions, next_version, package
from shared.training.train import TrainConfig

DAY = dt.date(2026, 11, 28)


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "models")


def _bundle() -> DatasetBundle:
    """One row in each split (empty validation or test splits are refused before any work)."""
    rows = [Example(f"shares {s}", "neutral", "real", s) for s in ("train", "validation", "test")]
    return DatasetBundle("sentiment", rows[:1], rows[1:2], rows[2:])


def _package(reg: Registry, version: str, checkpoint: Path) -> None:
    package(reg, "sentiment", version, checkpoint, _bundle(), max_length=16, training={})


def _checkpoint(path: Path) -> Path:
    """A folder that passes the checks made before exporting (config, weights, tokenizer)."""
    path.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (path / name).write_text("{}", encoding="utf-8")
    return path


def test_two_claims_in_a_row_get_different_folders(reg: Registry) -> None:
    first, second = next_version(reg, "sentiment", DAY), next_version(reg, "sentiment", DAY)
    assert (first, second) == ("2026.11.28-1", "2026.11.28-2")
    assert (reg.root / "sentiment" / first).is_dir() and (reg.root / "sentiment" / second).is_dir()
    (reg.root / "sentiment" / "2026.11.28-3").write_text("not a folder")  # any name taken is skipped
    assert next_version(reg, "sentiment", DAY) == "2026.11.28-4"


def test_runs_asking_at_once_get_different_versions(reg: Registry) -> None:
    runs = 8
    barrier = threading.Barrier(runs)

    def claim(_: int) -> str:
        barrier.wait()
        return next_version(reg, "sentiment", DAY)

    with ThreadPoolExecutor(max_workers=runs) as pool:
        got = list(pool.map(claim, range(runs)))
    assert sorted(got) == [f"2026.11.28-{n}" for n in range(1, runs + 1)]


def test_a_failed_export_removes_its_own_folder_only(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs without --version: the first one's export fails, the second one's folder
    and files stay; a claimed folder whose checkpoint is refused is given back."""
    mine, theirs = next_version(reg, "sentiment", DAY), next_version(reg, "sentiment", DAY)
    their_file = reg.root / "sentiment" / theirs / "model.fp32.onnx"
    their_file.write_bytes(b"the other run's export")

    def export_fails(*_: Any, **__: Any) -> None:
        raise RuntimeError("export failed")

    monkeypatch.setattr(pipeline, "export_onnx", export_fails)
    with pytest.raises(RuntimeError, match="export failed"):
        _package(reg, mine, _checkpoint(tmp_path / "ck"))
    assert not (reg.root / "sentiment" / mine).exists()
    assert their_file.read_bytes() == b"the other run's export"

    claimed = next_version(reg, "sentiment", DAY)
    with pytest.raises(FileNotFoundError):
        _package(reg, claimed, tmp_path / "nosuch")
    assert not (reg.root / "sentiment" / claimed).exists()


def test_a_folder_this_run_did_not_make_is_never_removed(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--version naming an empty folder (another process's claim, say): used, not removed
    when the export fails; one holding files is refused and kept as it is."""
    other = reg.root / "sentiment" / "v1"
    other.mkdir(parents=True)

    def export_fails(*_: Any, **__: Any) -> None:
        (other / "partial").write_text("x")
        raise RuntimeError("export failed")

    monkeypatch.setattr(pipeline, "export_onnx", export_fails)
    with pytest.raises(RuntimeError, match="export failed"):
        _package(reg, "v1", _checkpoint(tmp_path / "ck"))
    assert (other / "partial").is_file()
    with pytest.raises(RegistryError, match="exists without a card"):
        _package(reg, "v1", tmp_path / "ck")
    assert (other / "partial").is_file()


def test_a_training_run_that_fails_gives_its_version_back(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def train_fails(*_: Any, **__: Any) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(pipeline, "load_task", lambda *a, **k: _bundle())
    monkeypatch.setattr(pipeline, "train", train_fails)
    opts = PipelineOptions(TrainConfig(task="sentiment", base=str(tmp_path)), out=tmp_path / "run")
    with pytest.raises(RuntimeError, match="out of memory"):
        pipeline.run(reg, opts)
    assert list((reg.root / "sentiment").iterdir()) == []
    assert next_version(reg, "sentiment").endswith("-1")


def test_a_failure_after_exporting_removes_the_partial_version(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure in evaluation (after the ONNX files were written) left the folder without a
    card, and its name was then refused as "exists without a card"."""
    from shared.training.export import ParityReport

    def export_writes(checkpoint: Path, dest: Path, *_: Any, **__: Any) -> ParityReport:
        dest.write_bytes(b"graph")
        (dest.parent / "tokenizer.json").write_text("{}")
        return ParityReport(0.0, 1e-4, 1, True)

    def evaluation_fails(*_: Any, **__: Any) -> None:
        raise ValueError("evaluation failed")

    monkeypatch.setattr(pipeline, "export_onnx", export_writes)
    monkeypatch.setattr(pipeline, "build_variants", lambda *a, **k: {})
    monkeypatch.setattr(pipeline, "evaluated_card", evaluation_fails)
    ckpt = _checkpoint(tmp_path / "ck")
    for version in ("v1", next_version(reg, "sentiment", DAY)):  # named, and claimed
        with pytest.raises(ValueError, match="evaluation failed"):
            _package(reg, version, ckpt)
        assert not (reg.root / "sentiment" / version).exists()
