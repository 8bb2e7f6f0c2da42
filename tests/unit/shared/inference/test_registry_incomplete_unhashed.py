"""Versions that cannot serve are visible and never promoted.

Before: a card without ``artifacts`` (or missing a hash) was promoted, then `predict` and
the classifier refused it ("card records no sha256 for tokenizer.json"); and a version
folder left by a killed export (model and tokenizer, no card.json) was invisible to
`tonewatch models list`, and `promote` said only "missing file .../card.json".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.models import app
from shared.inference.registry import Registry, RegistryError


def _make(reg: Registry, version: str, files: dict[str, bytes] | None = None) -> Path:
    src = reg.root.parent / f"src-{version}"
    src.mkdir(parents=True)
    paths = {}
    for name, data in {"tokenizer.json": b'{"model": {}}', **(files or {"model.int8.onnx": b"int8"})}.items():
        (src / name).write_bytes(data)
        paths[name] = src / name
    reg.register(
        "sentiment", version, {"name": "t", "max_length": 32, "created_at": f"2026-01-0{len(version)}"}, files=paths
    )
    return reg.root / "sentiment" / version


def _edit_card(folder: Path, **changes: object) -> None:
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    card.update(changes)
    card = {k: v for k, v in card.items() if v is not None}
    (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    r = Registry(tmp_path / "models")
    _make(r, "v1")
    r.promote("sentiment", "v1")
    return r


def _cli(reg: Registry, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["--models-dir", str(reg.root), *args])
    return res.exit_code, res.output


def test_promote_refuses_a_card_without_artifacts(reg: Registry) -> None:
    folder = _make(reg, "v22")
    _edit_card(folder, artifacts=None)
    with pytest.raises(RegistryError) as info:
        reg.promote("sentiment", "v22")
    msg = str(info.value)
    assert msg.startswith("sentiment/v22 cannot serve: its card records no sha256 for ")
    assert "tokenizer.json, labels.json, model.int8.onnx" in msg and "refuses to load it" in msg
    code, out = _cli(reg, "promote", "--task", "sentiment", "--version", "v22")
    assert code == 1 and "records no sha256 for tokenizer.json" in " ".join(out.split()), out
    assert reg.promoted_version("sentiment") == "v1"


@pytest.mark.parametrize("unhashed", ["tokenizer.json", "labels.json", "model.int8.onnx", "model.fp16.onnx"])
def test_promote_refuses_a_file_a_service_loads_without_a_recorded_hash(reg: Registry, unhashed: str) -> None:
    folder = _make(reg, "v22", {"model.int8.onnx": b"int8", "model.fp16.onnx": b"fp16"})
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    _edit_card(folder, artifacts={k: v for k, v in card["artifacts"].items() if k != unhashed})
    with pytest.raises(RegistryError, match=rf"records no sha256 for {unhashed} \("):
        reg.promote("sentiment", "v22")
    assert reg.promoted_version("sentiment") == "v1"


def test_promote_refuses_artifacts_that_are_not_a_mapping(reg: Registry) -> None:
    folder = _make(reg, "v22")
    _edit_card(folder, artifacts=["tokenizer.json"])
    with pytest.raises(RegistryError, match=r"records no sha256 for tokenizer\.json"):
        reg.promote("sentiment", "v22")


def test_a_complete_card_still_promotes(reg: Registry) -> None:
    _make(reg, "v22")
    reg.promote("sentiment", "v22")
    assert reg.promoted_version("sentiment") == "v22"


def _half_written(reg: Registry, version: str) -> Path:
    """What a killed export leaves: the model and the tokenizer, no card."""
    folder = reg.root / "sentiment" / version
    folder.mkdir()
    (folder / "model.fp32.onnx").write_bytes(b"fp32")
    (folder / "tokenizer.json").write_bytes(b"{}")
    return folder


def test_a_half_written_version_is_listed_invalid_and_not_promoted(reg: Registry) -> None:
    folder = _half_written(reg, "v33")
    (reg.root / "sentiment" / "v44").mkdir()  # an empty folder: a version claimed by a run just starting
    entries, invalid = reg.scan("sentiment")
    assert [e.version for e in entries] == ["v1"] and list(invalid) == ["v33"]
    reason = invalid["v33"]
    assert reason == (
        f"{folder}: incomplete: no card.json (an interrupted train or export, or one still running?); "
        "remove the folder unless a run is writing it"
    )
    for call in (reg.get, reg.promote):
        with pytest.raises(RegistryError) as info:
            call("sentiment", "v33")
        assert str(info.value) == reason
    code, out = _cli(reg, "promote", "--task", "sentiment", "--version", "v33")
    assert code == 1 and "incomplete: no card.json" in out
    assert reg.promoted_version("sentiment") == "v1"


def test_list_shows_a_half_written_version_as_invalid(reg: Registry) -> None:
    _half_written(reg, "v33")
    code, out = _cli(reg, "list", "--task", "sentiment")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("* sentiment v1 ")
    assert lines[1].startswith("  sentiment v33") and "INVALID: " in lines[1] and "incomplete: no card.json" in lines[1]
    code, out = _cli(reg, "list", "--task", "sentiment", "--json")
    rows = json.loads(out)
    assert [r["version"] for r in rows] == ["v1", "v33"]
    assert rows[1]["promoted"] is False and "incomplete: no card.json" in rows[1]["invalid"]
