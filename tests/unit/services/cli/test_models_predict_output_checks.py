"""`models predict --output` in a folder that cannot be written is refused before the model
loads (exit 2, one message naming the folder).

Before: the model loaded first, then the write failed with exit 1 and a bare OS error
("[Errno 1] Operation not permitted: '.../.o.jsonl.<random>.tmp'", "[Errno 13] Permission
denied: '.../sub'"). A missing folder is still created (in a writable one)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from services.cli import models as cli


def _no_model(*args: object, **kwargs: object) -> Any:
    raise AssertionError("a refused --output must be found before the model loads")


def _predict(models: Path, src: Path, dst: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.setattr(cli, "_classifier", _no_model)
    base = ["--models-dir", str(models), "predict", "--task", "sentiment", "--device", "cpu"]
    return CliRunner().invoke(cli.app, [*base, "--input", str(src), "--output", str(dst)])


def _refused(res: Result, words: str) -> str:
    text = " ".join(res.output.replace("\u2502", " ").split())
    assert res.exit_code == 2, (res.output, res.exception)
    assert "--output" in text and words in text, text
    assert "Errno" not in text and "Traceback" not in text
    return text


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 1, "text": "fine"}\n', encoding="utf-8")
    return path


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A folder nothing can be written in: read-only for a user; for root (whom modes do not
    stop) immutable, where the file system allows it."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode != 0:
        pytest.skip("root, and no immutable folder here (chattr +i): no folder root cannot write in")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)


@pytest.mark.parametrize("under", ["o.jsonl", "sub/dir/o.jsonl"])
def test_an_output_in_a_folder_that_cannot_be_written_is_refused_before_the_model_loads(
    tiny_models: Path, src: Path, locked: Path, monkeypatch: pytest.MonkeyPatch, under: str
) -> None:
    res = _predict(tiny_models, src, locked / under, monkeypatch)
    text = _refused(res, "is not writable")
    assert f"{locked}isnotwritable" in text.replace(" ", "")  # the folder named (the box may wrap it)
    assert list(locked.iterdir()) == []


def test_a_link_to_a_file_in_a_folder_that_cannot_be_written_is_refused(
    tiny_models: Path, src: Path, locked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output is replaced where the link points: that folder is the one checked."""
    link = tmp_path / "link.jsonl"
    link.symlink_to(locked / "o.jsonl")
    _refused(_predict(tiny_models, src, link, monkeypatch), "is not writable")


def test_a_special_file_that_cannot_be_written_is_refused(
    tiny_models: Path, src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO (or /dev/stdout) is written directly: its own permission is what counts."""
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo, 0o400)
    real_access = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:  # root passes any mode check
        return False if Path(path) == fifo and mode & os.W_OK else real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    _refused(_predict(tiny_models, src, fifo, monkeypatch), "is not writable")


def test_missing_folders_in_a_writable_one_are_created_and_written(
    tiny_models: Path, src: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "new" / "sub" / "o.jsonl"
    base = ["--models-dir", str(tiny_models), "predict", "--task", "sentiment", "--device", "cpu"]
    res = CliRunner().invoke(cli.app, [*base, "--input", str(src), "--output", str(dst)])
    assert res.exit_code == 0, (res.output, res.exception)
    assert json.loads(dst.read_text(encoding="utf-8"))["id"] == 1
    assert sorted(p.name for p in dst.parent.iterdir()) == ["o.jsonl"]  # no temporary file left
