"""Registry contract: layout, listing, promotion, integrity."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from shared.inference.registry import (
    IntegrityError,
    Registry,
    RegistryError,
    default_models_dir,
    sha256_file,
)
from shared.labels import LABELS


def _make(reg: Registry, task: str, version: str, created: str = "2026-01-01") -> Path:
    src = reg.root.parent / f"src-{task}-{version}"
    src.mkdir(parents=True)
    (src / "m.onnx").write_bytes(b"fake-int8-" + version.encode())
    (src / "tok.json").write_text('{"model": {}}', encoding="utf-8")
    card = {"name": f"tonewatch-{task}-test", "max_length": 32, "created_at": created}
    reg.register(
        task,
        version,
        card,
        files={"model.int8.onnx": src / "m.onnx", "tokenizer.json": src / "tok.json"},
        card_md="# card\n",
    )
    return reg.root / task / version


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "models")


def test_default_root_is_repo_models() -> None:
    assert default_models_dir().name == "models"
    assert (default_models_dir().parent / "shared" / "labels.py").is_file()


def test_register_writes_card_hashes_and_labels(reg: Registry) -> None:
    path = _make(reg, "sentiment", "v1")
    card = json.loads((path / "card.json").read_text())
    assert card["task"] == "sentiment" and card["version"] == "v1"
    for name in ("model.int8.onnx", "tokenizer.json", "labels.json"):
        assert card["artifacts"][name] == sha256_file(path / name)
    assert json.loads((path / "labels.json").read_text()) == list(LABELS["sentiment"])
    assert (path / "CARD.md").read_text() == "# card\n"
    entry = reg.get("sentiment", "v1")
    assert entry.labels == LABELS["sentiment"]
    assert entry.max_length == 32
    assert entry.name == "tonewatch-sentiment-test"
    assert entry.available_variants() == ("int8",)
    assert entry.variant_path("int8") == path / "model.int8.onnx"
    assert entry.tokenizer_path == path / "tokenizer.json"
    assert entry.sha256("int8") == card["artifacts"]["model.int8.onnx"]


def test_missing_variant_and_unknown_variant(reg: Registry) -> None:
    _make(reg, "intent", "v1")
    entry = reg.get("intent", "v1")
    with pytest.raises(RegistryError, match="no fp16 variant"):
        entry.variant_path("fp16")
    with pytest.raises(RegistryError, match="unknown variant"):
        entry.variant_path("bf16")


def test_list_and_promote(reg: Registry) -> None:
    assert reg.list("sentiment") == []
    _make(reg, "sentiment", "v2", created="2026-02-01")
    _make(reg, "sentiment", "v1", created="2026-01-01")
    assert [e.version for e in reg.list("sentiment")] == ["v1", "v2"]
    with pytest.raises(RegistryError, match="no promoted"):
        reg.promoted("sentiment")
    reg.promote("sentiment", "v2")
    assert reg.promoted("sentiment").version == "v2"
    assert (reg.root / "sentiment" / "PROMOTED").read_text().strip() == "v2"
    with pytest.raises(RegistryError, match="no model"):
        reg.promote("sentiment", "v9")


def test_tampered_artifact_is_refused(reg: Registry) -> None:
    path = _make(reg, "sentiment", "v1")
    entry = reg.get("sentiment", "v1")
    assert reg.verify_variant(entry, "int8") == path / "model.int8.onnx"
    (path / "model.int8.onnx").write_bytes(b"tampered")
    with pytest.raises(IntegrityError) as info:
        reg.verify_variant(entry, "int8")
    msg = str(info.value)
    assert "model.int8.onnx" in msg and entry.sha256("int8") in msg
    assert info.value.actual == sha256_file(path / "model.int8.onnx")
    with pytest.raises(IntegrityError):
        reg.promote("sentiment", "v1")


def test_tampered_tokenizer_is_refused(reg: Registry) -> None:
    path = _make(reg, "intent", "v1")
    (path / "tokenizer.json").write_text('{"evil": 1}')
    with pytest.raises(IntegrityError, match=r"tokenizer\.json"):
        reg.verify_variant(reg.get("intent", "v1"), "int8")


def test_wrong_label_set_is_refused(reg: Registry) -> None:
    path = _make(reg, "sentiment", "v1")
    (path / "labels.json").write_text(json.dumps(["neg", "neu", "pos"]))
    with pytest.raises(RegistryError, match="differ from the fixed"):
        reg.get("sentiment", "v1")


@pytest.mark.parametrize("version", ["../x", "", "a/b", ".."])
def test_bad_versions_and_tasks(reg: Registry, version: str) -> None:
    with pytest.raises(RegistryError):
        reg.get("sentiment", version)
    with pytest.raises(RegistryError, match="unknown task"):
        reg.list("topic")


def test_register_requires_tokenizer_and_model(reg: Registry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"tokenizer\.json"):
        reg.register("intent", "v1", {})
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(RegistryError, match="onnx"):
        reg.register("intent", "v2", {}, files={"tokenizer.json": tmp_path / "t.json"})


def test_a_card_naming_its_variant_files_serves_those(reg: Registry) -> None:
    """``variant_files`` (a re-quantize mid-switch): the named file is the variant, verified
    against the hash recorded under its name; the file at the usual name is ignored."""
    path = _make(reg, "sentiment", "v1")
    (path / ".quantize-1.model.int8.onnx").write_bytes(b"new int8")
    card = json.loads((path / "card.json").read_text())
    card["variant_files"] = {"int8": ".quantize-1.model.int8.onnx"}
    card["artifacts"] = {k: v for k, v in card["artifacts"].items() if k != "model.int8.onnx"} | {
        ".quantize-1.model.int8.onnx": sha256_file(path / ".quantize-1.model.int8.onnx")
    }
    (path / "card.json").write_text(json.dumps(card))
    (path / "model.int8.onnx").write_bytes(b"being replaced")  # named by no card now
    entry = reg.get("sentiment", "v1")
    assert entry.available_variants() == ("int8",)
    assert reg.verify_variant(entry, "int8") == path / ".quantize-1.model.int8.onnx"
    assert entry.serving_files("int8") == (".quantize-1.model.int8.onnx", "tokenizer.json", "labels.json")
    reg.verify_servable(entry)
    reg.promote("sentiment", "v1")
    # rewriting the card (evaluate, score --record) hashes the named file, keeps the name
    again = reg.register("sentiment", "v1", dict(entry.card))
    assert again.variant_path("int8") == path / ".quantize-1.model.int8.onnx"
    assert "model.int8.onnx" not in again.card["artifacts"]
    (path / ".quantize-1.model.int8.onnx").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=r"\.quantize-1\.model\.int8\.onnx"):
        reg.verify_variant(reg.get("sentiment", "v1"), "int8")


@pytest.mark.parametrize("named", [{"int8": "../x.onnx"}, {"int8": "a/b.onnx"}, {"bf16": "m.onnx"}, ["int8"]])
def test_a_malformed_variant_files_is_refused(reg: Registry, named: object) -> None:
    path = _make(reg, "sentiment", "v1")
    card = json.loads((path / "card.json").read_text())
    (path / "card.json").write_text(json.dumps({**card, "variant_files": named}))
    with pytest.raises(RegistryError, match="variant_files"):
        reg.get("sentiment", "v1")
    assert list(reg.scan("sentiment")[1]) == ["v1"]


@pytest.mark.parametrize("version", ["vB\n", "vB\n\n", "2026.11.28-1\n"])
def test_a_version_name_ending_in_a_newline_is_refused(reg: Registry, version: str) -> None:
    """``$`` matched before a trailing newline: "vB\\n" was verified, then PROMOTED read back
    stripped named the folder "vB", which was never checked."""
    good = _make(reg, "sentiment", version.strip())
    shutil.copytree(good, reg.root / "sentiment" / version)  # a folder whose name ends in a newline
    assert reg.version_names("sentiment") == [version.strip()]
    for call in (reg.get, reg.promote, reg.version_dir):
        with pytest.raises(RegistryError, match="invalid version"):
            call("sentiment", version)
    with pytest.raises(RegistryError, match="invalid version"):
        reg.register("sentiment", version, {})
    assert reg.promoted_version("sentiment") is None


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names flushed files through /proc")
def test_promote_and_register_flush_what_they_write(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """PROMOTED, card.json, CARD.md, labels.json and copied artifacts reach the disk before
    they count (file and folder flushed, as a re-quantize does), so that a power cut cannot
    leave PROMOTED or a card naming what the disk does not hold."""
    synced: list[Path] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    path = _make(reg, "sentiment", "v1")
    flushed = {_written(p) for p in synced if p.parent == path}
    assert {"card.json", "CARD.md", "labels.json", "model.int8.onnx", "tokenizer.json"} <= flushed, synced
    assert path in synced

    synced.clear()
    reg.promote("sentiment", "v1")
    task_dir = reg.root / "sentiment"
    assert synced[1:] == [task_dir] and _written(synced[0]) == "PROMOTED", synced  # the content, then the rename
    assert synced[0].parent == task_dir


def _written(path: Path) -> str:
    """The file a flushed path stands for: ``.<name>.<random>.tmp`` is ``name`` being replaced."""
    temporary = re.fullmatch(r"\.(.+)\.[0-9a-f]+\.tmp", path.name)
    return temporary.group(1) if temporary else path.name
