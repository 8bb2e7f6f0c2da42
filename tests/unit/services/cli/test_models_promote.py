"""`tonewatch models promote` says that the running classifier keeps its model until it
restarts: it printed only "promoted task/version", as if the new version now served."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from services.cli.models import app
from shared.inference.registry import Registry


def test_promote_says_the_classifier_serves_the_version_after_a_restart(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "models")
    (tmp_path / "tokenizer.json").write_bytes(b'{"model": {}}')
    (tmp_path / "model.int8.onnx").write_bytes(b"int8")
    files = {name: tmp_path / name for name in ("tokenizer.json", "model.int8.onnx")}
    reg.register("sentiment", "v2", {"name": "t", "max_length": 32, "created_at": "2026-01-02"}, files=files)
    res = CliRunner().invoke(app, ["--models-dir", str(reg.root), "promote", "--task", "sentiment", "--version", "v2"])
    assert res.exit_code == 0, res.output
    first, second = res.output.strip().splitlines()
    assert first == "promoted sentiment/v2"
    assert "the classifier serves it after a restart" in second
    assert "TW_CLASSIFIER_SENTIMENT_VERSION" in second and "/v1/status" in second
    assert reg.promoted_version("sentiment") == "v2"
