"""A version that cannot serve is never promoted; one broken folder hides no other;
a truncation length past the model's position limit is refused at load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.models import app
from shared.inference.registry import IntegrityError, Registry, RegistryError, default_models_dir


def _make(reg: Registry, version: str, files: dict[str, bytes], card: dict[str, object] | None = None) -> Path:
    src = reg.root.parent / f"src-{version}"
    src.mkdir(parents=True)
    paths = {}
    for name, data in {"tokenizer.json": b'{"model": {}}', **files}.items():
        (src / name).write_bytes(data)
        paths[name] = src / name
    base = {"name": "t", "max_length": 32, "created_at": f"2026-01-0{len(version)}"}
    reg.register("sentiment", version, {**base, **(card or {})}, files=paths)
    return reg.root / "sentiment" / version


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "models")


def _promoted(reg: Registry) -> str | None:
    return reg.promoted_version("sentiment")


def test_promote_refuses_a_version_with_a_recorded_artifact_missing(reg: Registry) -> None:
    _make(reg, "v1", {"model.int8.onnx": b"int8"})
    reg.promote("sentiment", "v1")
    bad = _make(reg, "v22", {"model.int8.onnx": b"int8", "model.fp32.onnx": b"fp32"})
    (bad / "tokenizer.json").unlink()
    with pytest.raises(RegistryError, match=r"missing artifact\(s\) tokenizer.json"):
        reg.promote("sentiment", "v22")
    (bad / "tokenizer.json").write_bytes(b'{"model": {}}')
    (bad / "model.fp32.onnx").unlink()  # int8 still serves on CPU, but a GPU service had fp32 and has nothing now
    with pytest.raises(RegistryError, match=r"cannot serve on cuda: .*recorded but absent: fp32"):
        reg.promote("sentiment", "v22")
    assert _promoted(reg) == "v1"


def test_promote_refuses_a_version_with_only_a_gpu_variant(reg: Registry, tmp_path: Path) -> None:
    _make(reg, "v1", {"model.int8.onnx": b"int8"})
    reg.promote("sentiment", "v1")
    _make(reg, "v22", {"model.fp16.onnx": b"fp16"})
    with pytest.raises(RegistryError, match=r"no CPU-usable variant \(int8 or fp32\); present: fp16"):
        reg.promote("sentiment", "v22")
    res = CliRunner().invoke(app, ["--models-dir", str(reg.root), "promote", "--task", "sentiment", "--version", "v22"])
    assert res.exit_code == 1 and "no CPU-usable variant" in res.output
    assert _promoted(reg) == "v1"


def test_one_broken_version_hides_no_other(reg: Registry, tmp_path: Path) -> None:
    _make(reg, "v1", {"model.int8.onnx": b"int8"})
    bad = _make(reg, "v22", {"model.int8.onnx": b"int8"})
    labels = json.loads((bad / "labels.json").read_text())
    (bad / "labels.json").write_text(json.dumps(labels[::-1]))
    reg.promote("sentiment", "v1")

    assert [e.version for e in reg.list("sentiment")] == ["v1"]
    entries, invalid = reg.scan("sentiment")
    assert [e.version for e in entries] == ["v1"] and list(invalid) == ["v22"] and "differ" in invalid["v22"]
    with pytest.raises(RegistryError, match="no model sentiment/nosuch") as exc:
        reg.promote("sentiment", "nosuch")
    assert "v22" in str(exc.value) and "differ" not in str(exc.value)  # named, not parsed

    from shared.training.pipeline import next_version

    assert next_version(reg, "sentiment").endswith("-1")

    res = CliRunner().invoke(app, ["--models-dir", str(reg.root), "list", "--task", "sentiment"])
    assert res.exit_code == 0, res.output
    assert "* sentiment v1" in res.output and "v22" in res.output and "INVALID" in res.output
    res = CliRunner().invoke(app, ["--models-dir", str(reg.root), "list", "--task", "sentiment", "--json"])
    rows = json.loads(res.stdout)
    assert [r["version"] for r in rows] == ["v1", "v22"] and "differ" in rows[1]["invalid"]


def test_position_limit_from_the_card_or_the_recorded_base_config(reg: Registry, tmp_path: Path) -> None:
    from shared.inference.registry import position_limit_of

    assert position_limit_of({"model_type": "bert", "max_position_embeddings": 512}) == 512
    assert position_limit_of({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}) == 512
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "bert", "max_position_embeddings": 512}))
    _make(reg, "v1", {"model.int8.onnx": b"x"}, {"max_positions": 128})
    assert reg.get("sentiment", "v1").position_limit == 128
    _make(reg, "v22", {"model.int8.onnx": b"x"}, {"base_model": {"path": str(base)}})
    assert reg.get("sentiment", "v22").position_limit == 512
    _make(reg, "v333", {"model.int8.onnx": b"x"})
    assert reg.get("sentiment", "v333").position_limit is None


def test_the_shipped_models_know_their_position_limit() -> None:
    shipped = Registry(default_models_dir())
    for task in ("sentiment", "intent"):
        assert shipped.promoted(task).position_limit == 512


def test_a_max_length_past_the_position_limit_is_refused_at_load(tiny_models: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from shared.inference.engine import Classifier
    from shared.inference.settings import InferenceSettings

    root = tmp_path / "models"
    shutil.copytree(tiny_models, root)
    reg = Registry(root)
    entry = reg.promoted("sentiment")
    assert entry.position_limit == 128
    with pytest.raises(RegistryError, match="max_length setting 600 exceeds the model's position limit of 128"):
        Classifier.load(entry, InferenceSettings(device="cpu", max_length=600), registry=reg)
    clf = Classifier.load(entry, InferenceSettings(device="cpu", max_length=128), registry=reg)
    assert clf.predict_proba(["word " * 400]).shape == (1, 3)


def test_a_recorded_variant_that_is_absent_does_not_block_promote(reg: Registry) -> None:
    """As shipped: the card records fp32, which the repository leaves out; int8 serves on
    CPU and fp16 on GPU, so the version can be promoted (rolled back to), while a present
    file that does not match its hash is still refused."""
    files = {"model.int8.onnx": b"int8", "model.fp16.onnx": b"fp16", "model.fp32.onnx": b"fp32"}
    path = _make(reg, "v1", files)
    (path / "model.fp32.onnx").unlink()
    reg.promote("sentiment", "v1")
    assert _promoted(reg) == "v1"
    entry = reg.get("sentiment", "v1")
    assert entry.available_variants() == ("int8", "fp16") and entry.absent_variants() == ("fp32",)
    res = CliRunner().invoke(app, ["--models-dir", str(reg.root), "promote", "--task", "sentiment", "--version", "v1"])
    assert res.exit_code == 0, res.output

    _make(reg, "v22", {"model.int8.onnx": b"int8"})
    reg.promote("sentiment", "v22")
    for name in ("model.fp16.onnx", "model.int8.onnx"):
        (path / name).write_bytes(b"tampered")
        with pytest.raises(IntegrityError, match=name.replace(".", r"\.")):
            reg.promote("sentiment", "v1")
        (path / name).write_bytes(files[name])
    (path / "model.fp16.onnx").unlink()  # a GPU service (device=cuda) would have no fp16 or fp32 left
    with pytest.raises(
        RegistryError, match=r"cannot serve on cuda: no fp16 or fp32 variant \(recorded but absent: fp16"
    ):
        reg.promote("sentiment", "v1")
    assert _promoted(reg) == "v22"


def test_the_shipped_versions_can_be_promoted_again(tmp_path: Path) -> None:
    """Rolling back to a shipped version (on a copy of models/): their cards record the
    fp32 file that .gitignore keeps out of the repository."""
    shipped = Registry(default_models_dir())
    root = tmp_path / "models"
    for task in ("sentiment", "intent"):
        try:
            entry = shipped.promoted(task)
        except RegistryError:
            pytest.skip(f"no promoted {task} model in this checkout")
        shutil.copytree(entry.path, root / task / entry.version)
        args = ["--models-dir", str(root), "promote", "--task", task, "--version", entry.version]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert Registry(root).promoted_version(task) == entry.version
        assert "fp32" in entry.absent_variants()
        listed = CliRunner().invoke(app, ["--models-dir", str(root), "list", "--task", task])
        assert "int8,fp16 (fp32 absent)" in listed.output, listed.output


def test_a_version_folder_that_cannot_be_read_is_reported_and_hides_no_other(reg: Registry) -> None:
    """A card saved as UTF-16, a labels.json that is a folder: that version is INVALID with
    its reason; list, scan and next_version (train/export without --version) carry on."""
    _make(reg, "v1", {"model.int8.onnx": b"int8"})
    utf16 = _make(reg, "v22", {"model.int8.onnx": b"int8"})
    card = utf16 / "card.json"
    card.write_bytes(card.read_text(encoding="utf-8").encode("utf-16"))
    folder = _make(reg, "v333", {"model.int8.onnx": b"int8"})
    (folder / "labels.json").unlink()
    (folder / "labels.json").mkdir()

    entries, invalid = reg.scan("sentiment")
    assert [e.version for e in entries] == ["v1"] and sorted(invalid) == ["v22", "v333"]
    assert "card.json is not UTF-8 text" in invalid["v22"]
    assert "cannot read" in invalid["v333"] and "labels.json" in invalid["v333"]
    from shared.training.pipeline import next_version

    assert next_version(reg, "sentiment").endswith("-1")
    res = CliRunner().invoke(app, ["--models-dir", str(reg.root), "list", "--task", "sentiment"])
    assert res.exit_code == 0 and res.exception is None, res.output
    lines = res.output.splitlines()
    assert any(" v22 " in line and "INVALID" in line and "UTF-8" in line for line in lines), res.output
    assert any(" v333 " in line and "INVALID" in line and "labels.json" in line for line in lines), res.output
