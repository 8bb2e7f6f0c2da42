"""`tonewatch models quantize` interrupted at every step: the version must still load (every
hash the card records matches), serve, and be entirely the old version or entirely the
new one, and running the command again must complete.

The interruption is an error raised from the N-th file-system step the command takes in
the version folder (a rename, a hard link, an fsync, a removal), for N = 1, 2, ... until
a run goes through; one more case kills the process at the step after which the card
names the new files under their temporary names (no clean-up runs at all). The "old"
version is quantized per tensor, the new one per channel, so their int8 files differ.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from tiny_models import build_tiny_registry, tiny_data
from typer.testing import CliRunner

from services.cli.models import app
from shared.inference.engine import Classifier
from shared.inference.registry import Registry
from shared.inference.session import clear_cache
from shared.inference.settings import InferenceSettings
from shared.labels import LABELS
from shared.training.datasets import load_task
from shared.training.evaluate import evaluate_dir
from shared.training.optimize import build_variants
from shared.training.pipeline import card_variants, evaluate_and_write, version_lock

pytestmark = pytest.mark.slow

TASK, VERSION = "sentiment", "tiny"
REPO = Path(__file__).resolve().parents[4]


class Crash(RuntimeError):
    """The injected interruption."""


@contextmanager
def crash_at(n: int, folder: Path, monkeypatch: pytest.MonkeyPatch, *, kill: bool = False) -> Iterator[list[str]]:
    """Raise :class:`Crash` (``kill``: end the process at once) at the ``n``-th call of
    os.replace, os.link, os.fsync or os.unlink that touches ``folder``; yields the steps seen."""
    seen: list[str] = []
    real = {name: getattr(os, name) for name in ("replace", "link", "fsync", "unlink")}
    inside = str(folder.resolve())

    def where(target: Any) -> str:
        return os.readlink(f"/proc/self/fd/{target}") if isinstance(target, int) else os.path.abspath(target)

    def ours(target: Any) -> bool:
        return where(target) == inside or where(target).startswith(inside + os.sep)

    def wrap(name: str) -> Any:
        def step(*args: Any, **kwargs: Any) -> Any:
            target = args[0] if name in ("fsync", "unlink") else args[1]
            if kwargs.get("dir_fd") is None and ours(target):
                seen.append(f"{name} {os.path.relpath(where(target), inside)}")
                if len(seen) == n:
                    if kill:
                        os._exit(137)
                    raise Crash(f"interrupted at step {n}: {seen[-1]}")
            return real[name](*args, **kwargs)

        return step

    with monkeypatch.context() as m:
        for name in real:
            m.setattr(os, name, wrap(name))
        yield seen


@pytest.fixture(scope="module")
def old_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny registry whose sentiment version has int8 and fp16 files quantized per
    tensor (the "old" version), with a card complete enough for CARD.md."""
    root = build_tiny_registry(tmp_path_factory.mktemp("models"))
    data = tiny_data(root.parent / "data.jsonl")
    reg = Registry(root)
    entry = reg.get(TASK, VERSION)
    card = {
        **entry.card,
        "labels": list(LABELS[TASK]),
        "base_model": {"name": "random tiny BERT (tests)", "path": str(root)},
        "created_at": "2026-01-01T00:00:00+00:00",
        "notes": [],
    }
    card["optimization"] = build_variants(entry.path / "model.fp32.onnx", entry.path, per_channel=False, shape=(2, 32))
    evaluate_and_write(reg, TASK, VERSION, load_task(TASK, [data]), card)
    return root, data


def _copy(old_registry: tuple[Path, Path], where: Path) -> Registry:
    shutil.copytree(old_registry[0], where)
    return Registry(where)


def _quantize(reg: Registry, data: Path) -> Any:
    opts = ["--task", TASK, "--version", VERSION, "--data", str(data)]
    return CliRunner().invoke(app, ["--models-dir", str(reg.root), "quantize", *opts])


def _hashes(reg: Registry) -> dict[str, str]:
    entry = reg.get(TASK, VERSION)
    return {v: entry.sha256(v) for v in ("int8", "fp16")}


@pytest.fixture(scope="module")
def versions(old_registry: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The int8 and fp16 hashes of the old version and of the new one (a run not interrupted)."""
    reg = _copy(old_registry, tmp_path_factory.mktemp("reference") / "models")
    old = _hashes(reg)
    res = _quantize(reg, old_registry[1])
    assert res.exit_code == 0, res.output
    new = _hashes(reg)
    assert old["int8"] != new["int8"]
    return {"old": old, "new": new}


def _check_loads_and_serves(reg: Registry, versions: dict[str, dict[str, str]]) -> str:
    """The version verifies and serves, entirely old or entirely new; which one."""
    entry = reg.get(TASK, VERSION)
    reg.verify_servable(entry)  # every recorded artifact present, every hash matching
    assert set(entry.available_variants()) == {"fp32", "int8", "fp16"}
    reg.verify(entry, entry.available_variants())
    state = "new" if entry.card["optimization"]["int8"]["per_channel"] else "old"
    assert _hashes(reg) == versions[state]  # the files, the card's figures and settings are of one run
    for variant in ("int8", "fp32"):
        clear_cache()
        clf = Classifier.load(entry, InferenceSettings(device="cpu", variant=variant), reg)
        predictions = clf.predict(["shares surge to a record", "oil prices crash"])
        assert [p.label in LABELS[TASK] for p in predictions] == [True, True]
    listed = CliRunner().invoke(app, ["--models-dir", str(reg.root), "list", "--task", TASK, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(r["version"], sorted(r["variants"])) for r in json.loads(listed.stdout)] == [
        (VERSION, ["fp16", "fp32", "int8"])
    ]
    return state


def _check_complete(reg: Registry, versions: dict[str, dict[str, str]]) -> None:
    assert _check_loads_and_serves(reg, versions) == "new"
    entry = reg.get(TASK, VERSION)
    assert "variant_files" not in entry.card  # the usual names again
    assert sorted(p.name for p in entry.path.iterdir()) == [
        "CARD.md",
        "card.json",
        "labels.json",
        "model.fp16.onnx",
        "model.fp32.onnx",
        "model.int8.onnx",
        "tokenizer.json",
    ]
    assert sorted(entry.card["artifacts"]) == sorted(
        ["labels.json", "model.fp16.onnx", "model.fp32.onnx", "model.int8.onnx", "tokenizer.json"]
    )


def test_quantize_interrupted_at_each_step_leaves_a_version_that_loads_and_a_rerun_completes(
    old_registry: tuple[Path, Path],
    versions: dict[str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = old_registry[1]
    states: list[str] = []
    problems: list[str] = []  # every step is tried; all that went wrong is shown at the end

    def check(n: int, step: str, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            problems.append(f"step {n} ({step}): {what}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            return None

    n = 0
    while True:
        n += 1
        assert n < 60, "the command never completed"
        reg = _copy(old_registry, tmp_path / f"run{n}" / "models")
        folder = reg.version_dir(TASK, VERSION)
        with crash_at(n, folder, monkeypatch) as seen:
            res = _quantize(reg, data)
        if len(seen) < n:  # not interrupted: every step has been tried
            assert res.exit_code == 0, res.output
            _check_complete(reg, versions)
            break
        assert res.exit_code != 0 and isinstance(res.exception, (Crash, SystemExit)), res.output
        step = seen[n - 1]  # (clean-up steps may follow it)
        states.append(check(n, step, "after the interruption", lambda r=reg: _check_loads_and_serves(r, versions)))
        # what an interrupted run leaves (and a dead process would) is never hashed nor listed
        (folder / ".quantize-0dead.model.int8.onnx").write_bytes(b"not a model")
        (folder / ".quantize-eval-0dead").mkdir(exist_ok=True)
        rerun = _quantize(reg, data)
        if rerun.exit_code != 0:
            problems.append(f"step {n} ({step}): the rerun failed: {rerun.output.strip()[:300]}")
        else:
            check(n, step, "after the rerun", lambda r=reg: _check_complete(r, versions))
    assert not problems, "\n".join(problems)
    assert set(states) == {"old", "new"}, states  # interrupted before and after the switch to the new files
    assert states == sorted(states, key=lambda s: s == "new"), states  # once new, new to the end


def _kill_step(old_registry: tuple[Path, Path], where: Path) -> int:
    """The number of the step just after the card first names the new files (a dry run)."""
    reg = _copy(old_registry, where)
    mp = pytest.MonkeyPatch()
    try:
        with crash_at(10_000, reg.version_dir(TASK, VERSION), mp) as seen:
            assert _quantize(reg, old_registry[1]).exit_code == 0
    finally:
        mp.undo()
    return seen.index("replace card.json") + 2


def test_quantize_killed_after_the_card_names_the_new_files(
    old_registry: tuple[Path, Path], versions: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """The process dies (no clean-up at all) right after the card was replaced by one that
    names the new files under their temporary names: a fresh process loads the new
    version, and the command run again completes and removes the temporary files."""
    kill_at = _kill_step(old_registry, tmp_path / "dry" / "models")
    reg = _copy(old_registry, tmp_path / "models")
    folder = reg.version_dir(TASK, VERSION)
    script = f"""
import sys
from pathlib import Path
sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}, {str(Path(__file__).parent)!r}]
import pytest
from test_quantize_interrupted import TASK, VERSION, _quantize, crash_at
from shared.inference.registry import Registry
reg = Registry(Path({str(reg.root)!r}))
with crash_at({kill_at}, reg.version_dir(TASK, VERSION), pytest.MonkeyPatch(), kill=True):
    _quantize(reg, Path({str(old_registry[1])!r}))
sys.exit(3)  # not killed
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 137, proc.stdout + proc.stderr
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    assert set(card["variant_files"]) == {"int8", "fp16"}  # killed between the two card writes
    assert all(name.startswith(".quantize-") for name in card["variant_files"].values())
    assert _check_loads_and_serves(Registry(reg.root), versions) == "new"
    # re-evaluating meanwhile evaluates (and re-hashes) the files the card names
    opts = ["--task", TASK, "--version", VERSION, "--data", str(old_registry[1])]
    res = CliRunner().invoke(app, ["--models-dir", str(reg.root), "evaluate", *opts])
    assert res.exit_code == 0, res.output
    entry = reg.get(TASK, VERSION)
    assert entry.card["variant_files"] == card["variant_files"]
    assert entry.card["metrics"]["int8"]["accuracy"] == card["metrics"]["int8"]["accuracy"]
    assert _check_loads_and_serves(reg, versions) == "new"
    # scoring meanwhile scores the files the card names, not the old ones still under the usual names
    score = ["--models-dir", str(reg.root), "score", "--task", TASK, "--version", VERSION, "--json"]
    res = CliRunner().invoke(app, [*score, "--input", str(old_registry[1])])
    assert res.exit_code == 0, res.output
    scored = json.loads(res.stdout)["metrics"]["int8"]["max_abs_prob_diff_fp32"]
    rows = [json.loads(line) for line in old_registry[1].read_text(encoding="utf-8").splitlines() if line.strip()]
    texts, gold = [r["text"] for r in rows], [r["label"] for r in rows]
    entry = reg.get(TASK, VERSION)
    with card_variants(entry.path, entry.card) as where:
        named = evaluate_dir(where, texts, gold, entry.labels)["int8"]["max_abs_prob_diff_fp32"]
    usual = evaluate_dir(entry.path, texts, gold, entry.labels)["int8"]["max_abs_prob_diff_fp32"]
    assert named != usual  # the old int8 file is still there under its usual name
    assert scored == named
    rerun = _quantize(reg, old_registry[1])
    assert rerun.exit_code == 0, rerun.output
    _check_complete(reg, versions)


def test_a_second_quantize_of_the_same_version_is_refused_while_one_runs(
    old_registry: tuple[Path, Path], tmp_path: Path
) -> None:
    reg = _copy(old_registry, tmp_path / "models")
    folder = reg.version_dir(TASK, VERSION)
    before = (folder / "card.json").read_bytes()
    with version_lock(folder):  # as a run in progress holds it
        res = _quantize(reg, old_registry[1])
    assert res.exit_code == 1 and "another `tonewatch models quantize` of this version is running" in res.output
    assert (folder / "card.json").read_bytes() == before
    # so are the other commands that rewrite the card from the files (they would write back
    # a card read before the quantize moved the files)
    opts = ["--task", TASK, "--version", VERSION]
    with version_lock(folder):
        for command in (
            ["evaluate", *opts, "--data", str(old_registry[1])],
            ["score", *opts, "--input", str(old_registry[1]), "--record"],
        ):
            res = CliRunner().invoke(app, ["--models-dir", str(reg.root), *command])
            assert res.exit_code == 1 and "another `tonewatch models quantize`" in res.output, (command, res.output)
    assert (folder / "card.json").read_bytes() == before
    assert not [p for p in folder.iterdir() if p.name.startswith(".quantize-")]
