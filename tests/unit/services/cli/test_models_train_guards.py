"""`tonewatch models train` refuses, before any training, what the run could not finish:
a --version that is registered, a work folder holding a checkpoint, data that leaves the
validation or the test split empty (exit 2, one line, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from services.cli.models import _command, _path_arg, app
from shared.training.datasets import DATA_DIR


def _jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _real(n: int) -> list[dict[str, str]]:
    return [
        {"text": f"{lab} headline {i}", "label": lab} for lab in ("negative", "neutral", "positive") for i in range(n)
    ]


def _authored(n: int) -> list[dict[str, str]]:
    return [{**r, "text": "authored " + r["text"], "source": "authored"} for r in _real(n)]


def _invoke(tmp_path: Path, data: Path, *extra: str) -> Result:
    """A run whose base encoder has no weights: any refusal must come before training."""
    base = tmp_path / "no-encoder"
    base.mkdir(exist_ok=True)
    (base / "config.json").write_text("{}", encoding="utf-8")
    args = ["--models-dir", str(tmp_path / "models"), "train", "--task", "sentiment"]
    args += ["--base", str(base), "--data", str(data), "--no-progress", *extra]
    return CliRunner().invoke(app, args)


def _train(tmp_path: Path, data: Path, *extra: str) -> tuple[int, str]:
    res = _invoke(tmp_path, data, *extra)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


def test_a_registered_version_is_refused_before_training(tmp_path: Path) -> None:
    registered = tmp_path / "models" / "sentiment" / "t1"
    registered.mkdir(parents=True)
    (registered / "card.json").write_text("{}", encoding="utf-8")
    code, out = _train(
        tmp_path, _jsonl(tmp_path / "d.jsonl", _real(20)), "--version", "t1", "--out", str(tmp_path / "r")
    )
    assert code == 2, out
    assert out.startswith("error: sentiment/t1 already exists") and "choose another --version" in out
    assert not (tmp_path / "r").exists()


def test_a_work_folder_holding_a_checkpoint_is_refused_before_training(tmp_path: Path) -> None:
    ckpt = tmp_path / "r" / "checkpoint"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text("another run's", encoding="utf-8")
    code, out = _train(tmp_path, _jsonl(tmp_path / "d.jsonl", _real(20)), "--version", "t2", "--out", str(ckpt.parent))
    assert code == 2, out
    assert "already holds a checkpoint" in out and "--out" in out
    assert (ckpt / "config.json").read_text(encoding="utf-8") == "another run's"
    assert not (tmp_path / "models" / "sentiment" / "t2").exists()


def test_no_validation_rows_is_refused_unless_allowed(tmp_path: Path) -> None:
    """3 real rows per label: 1 test row each, no validation row (authored rows are train only)."""
    data = _jsonl(tmp_path / "d.jsonl", _real(3) + _authored(10))
    code, out = _train(tmp_path, data, "--version", "v", "--out", str(tmp_path / "r"))
    assert code == 2, out
    assert out.startswith("error: no validation rows:") and "--allow-no-validation" in out
    assert out.count("\n") == 1
    # allowed: training starts (and stops here at the missing encoder, not at the data)
    res = _invoke(tmp_path, data, "--version", "v", "--out", str(tmp_path / "r"), "--allow-no-validation")
    assert "no-encoder" in str(res.exception) and "no validation rows" not in res.output


def test_no_test_rows_is_refused_before_training(tmp_path: Path) -> None:
    """Authored rows only: every row is pinned to train."""
    data = _jsonl(tmp_path / "a.jsonl", _authored(20))
    for extra in ((), ("--allow-no-validation",)):
        code, out = _train(tmp_path, data, "--version", "v", "--out", str(tmp_path / "r"), *extra)
        assert code == 2, out
        assert out.startswith("error: no test rows:")
        assert not (tmp_path / "models" / "sentiment" / "v").exists() and not (tmp_path / "r").exists()


def test_a_base_that_is_no_model_folder_is_refused_before_anything(tmp_path: Path) -> None:
    """transformers took the missing path for a hub repo id, and the CLI reported it as a
    service it could not reach."""
    data = _jsonl(tmp_path / "d.jsonl", _real(20))
    args = ["--models-dir", str(tmp_path / "models"), "train", "--task", "sentiment"]
    res = CliRunner().invoke(app, [*args, "--base", str(tmp_path / "missing"), "--data", str(data), "--no-progress"])
    assert res.exit_code == 2, res.output
    # Rich boxes the message at 80 columns: where it wraps depends on the temporary path's length.
    assert "not a local Hugging Face model folder" in " ".join(res.output.replace("│", " ").split())
    assert not (tmp_path / "models").exists()


def test_recorded_paths_run_from_the_repository_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path recorded as typed (``--data train.jsonl`` in another folder) did not exist
    when the card's command was run from the repository root."""
    monkeypatch.chdir(tmp_path)
    assert _path_arg(Path("train.jsonl")) == str(tmp_path.resolve() / "train.jsonl")
    monkeypatch.chdir(DATA_DIR)
    assert _path_arg(Path("sentiment/authored_headlines.jsonl")) == "data/sentiment/authored_headlines.jsonl"
    assert _path_arg(Path("a b.jsonl")).startswith("'")  # quoted for the shell


def test_the_recorded_command_keeps_another_registry(tmp_path: Path) -> None:
    """Without ``--models-dir`` a rerun registered into the default models/."""
    ctx = typer.Context(typer.main.get_command(app))
    ctx.obj = {"models_dir": tmp_path / "reg"}
    assert _command(ctx, "train", ["--task intent"]) == (
        f"tonewatch models --models-dir {tmp_path.resolve() / 'reg'} train --task intent"
    )
    ctx.obj = {"models_dir": None}
    assert _command(ctx, "export", ["--task intent"]) == "tonewatch models export --task intent"
