"""Model registry: versioned model folders under ``models/<task>/<version>/``.

Layout (see the model-registry contract)::

    models/<task>/<version>/model.{fp32,int8,fp16}.onnx
    models/<task>/<version>/tokenizer.json, labels.json, card.json, CARD.md
    models/<task>/PROMOTED            the version that serves

``card.json["artifacts"]`` maps every artifact file name to its sha256. Loading a
variant for serving must go through :meth:`Registry.verify_variant` (or
:meth:`Registry.verify`), which refuses any file whose hash does not match.
Nothing here touches the disk at import time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.labels import LABELS

__all__ = [
    "ARTIFACT_FILES",
    "VARIANT_FILES",
    "IntegrityError",
    "ModelEntry",
    "Registry",
    "RegistryError",
    "default_models_dir",
    "sha256_file",
]

VARIANT_FILES: Mapping[str, str] = {
    "fp32": "model.fp32.onnx",
    "int8": "model.int8.onnx",
    "fp16": "model.fp16.onnx",
}
"""Variant name -> ONNX file name inside a version folder."""

ARTIFACT_FILES: tuple[str, ...] = (
    *VARIANT_FILES.values(),
    "tokenizer.json",
    "labels.json",
)
"""Files whose sha256 is recorded in ``card.json["artifacts"]`` when present."""

PROMOTED_FILE = "PROMOTED"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_CHUNK = 1 << 20


class RegistryError(Exception):
    """Any registry problem: unknown task or version, malformed folder, missing file."""


class IntegrityError(RegistryError):
    """An artifact's sha256 does not match the one recorded in its card."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        super().__init__(
            f"integrity check failed for {path}: expected sha256 {expected}, "
            f"got {actual}; refusing to load a modified artifact"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


def default_models_dir() -> Path:
    """``<repo>/models``; the repo root is the parent of the ``shared`` package."""
    return Path(__file__).resolve().parent.parent.parent / "models"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_task(task: str) -> None:
    if task not in LABELS:
        raise RegistryError(f"unknown task {task!r}; expected one of {sorted(LABELS)}")


def _check_version(version: str) -> None:
    if not _VERSION_RE.match(version) or version in {".", ".."}:
        raise RegistryError(
            f"invalid version {version!r}: use letters, digits, '.', '_', '+', '-' (at most 64 characters)"
        )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RegistryError(f"missing file {path}") from exc
    except json.JSONDecodeError as exc:
        raise RegistryError(f"malformed JSON in {path}: {exc}") from exc


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class ModelEntry:
    """One registered model version (a folder plus its parsed card)."""

    task: str
    version: str
    path: Path
    labels: tuple[str, ...]
    card: Mapping[str, Any]
    max_length: int
    name: str

    @property
    def tokenizer_path(self) -> Path:
        """Path of the ``tokenizer.json`` file."""
        return self.path / "tokenizer.json"

    @property
    def labels_path(self) -> Path:
        """Path of the ``labels.json`` file."""
        return self.path / "labels.json"

    @property
    def inputs(self) -> tuple[str, ...]:
        """ONNX input names in the order the card lists them."""
        raw = self.card.get("inputs") or ["input_ids", "attention_mask"]
        return tuple(str(x) for x in raw)

    def variant_path(self, variant: str) -> Path:
        """Path of a variant's ONNX file; :class:`RegistryError` if unknown/absent."""
        if variant not in VARIANT_FILES:
            raise RegistryError(f"unknown variant {variant!r}; expected one of {list(VARIANT_FILES)}")
        path = self.path / VARIANT_FILES[variant]
        if not path.is_file():
            have = ", ".join(self.available_variants()) or "none"
            raise RegistryError(f"{self.task}/{self.version} has no {variant} variant ({path.name}); available: {have}")
        return path

    def available_variants(self) -> tuple[str, ...]:
        """Variants whose ONNX file exists in the folder, in fp32, int8, fp16 order."""
        return tuple(v for v, f in VARIANT_FILES.items() if (self.path / f).is_file())

    def sha256(self, variant: str) -> str:
        """Recorded sha256 of a variant (``"int8"``) or an artifact file name."""
        fname = VARIANT_FILES.get(variant, variant)
        artifacts = self.card.get("artifacts") or {}
        digest = artifacts.get(fname)
        if not isinstance(digest, str):
            raise RegistryError(f"{self.task}/{self.version}: card records no sha256 for {fname}")
        return digest

    def serving_files(self, variant: str) -> tuple[str, ...]:
        """Files to verify before serving ``variant``."""
        return (VARIANT_FILES.get(variant, variant), "tokenizer.json", "labels.json")


class Registry:
    """File-system model registry rooted at ``root`` (``models_dir``)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_models_dir()

    # ---- lookup -------------------------------------------------------------------
    def version_dir(self, task: str, version: str) -> Path:
        """Folder of ``task``/``version`` (may not exist yet)."""
        _check_task(task)
        _check_version(version)
        return self.root / task / version

    def list(self, task: str) -> list[ModelEntry]:
        """All registered versions of ``task`` (folders with a card), oldest first."""
        _check_task(task)
        task_dir = self.root / task
        if not task_dir.is_dir():
            return []
        entries = [
            self.get(task, d.name)
            for d in task_dir.iterdir()
            if d.is_dir() and (d / "card.json").is_file() and _VERSION_RE.match(d.name)
        ]
        return sorted(entries, key=lambda e: (str(e.card.get("created_at", "")), e.version))

    def get(self, task: str, version: str) -> ModelEntry:
        """Parse one version folder; :class:`RegistryError` if absent or malformed."""
        path = self.version_dir(task, version)
        if not path.is_dir():
            known = [e.version for e in self.list(task)] if (self.root / task).is_dir() else []
            raise RegistryError(f"no model {task}/{version} under {self.root}; known: {known}")
        card = _read_json(path / "card.json")
        if not isinstance(card, dict):
            raise RegistryError(f"{path / 'card.json'}: expected a JSON object")
        if card.get("task", task) != task:
            raise RegistryError(f"{path / 'card.json'}: task {card.get('task')!r} != {task!r}")
        labels_raw = _read_json(path / "labels.json")
        if not isinstance(labels_raw, list) or not all(isinstance(x, str) for x in labels_raw):
            raise RegistryError(f"{path / 'labels.json'}: expected a JSON list of strings")
        labels = tuple(labels_raw)
        if labels != LABELS[task]:
            raise RegistryError(
                f"{path / 'labels.json'}: labels {list(labels)} differ from the fixed "
                f"{task} label set {list(LABELS[task])}"
            )
        try:
            max_length = int(card.get("max_length", 128))
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"{path / 'card.json'}: bad max_length") from exc
        name = str(card.get("name") or f"tonewatch-{task}")
        return ModelEntry(task, version, path, labels, card, max_length, name)

    def promoted(self, task: str) -> ModelEntry:
        """The version named in ``<task>/PROMOTED``."""
        _check_task(task)
        marker = self.root / task / PROMOTED_FILE
        if not marker.is_file():
            raise RegistryError(f"no promoted {task} model ({marker} missing); run `tonewatch models promote`")
        version = marker.read_text(encoding="utf-8").strip()
        return self.get(task, version)

    def promote(self, task: str, version: str) -> None:
        """Make ``version`` the serving one after checking every recorded artifact."""
        entry = self.get(task, version)
        if not entry.available_variants():
            raise RegistryError(f"{task}/{version} has no ONNX variant to serve")
        self.verify_all(entry)
        _write_text_atomic(self.root / task / PROMOTED_FILE, version + "\n")

    # ---- integrity ----------------------------------------------------------------
    def verify(self, entry: ModelEntry, files: Iterable[str]) -> None:
        """Check ``files`` (names or variants) against the card hashes.

        Raises :class:`IntegrityError` on a mismatch, :class:`RegistryError` when a
        file is missing or has no recorded hash.
        """
        for item in files:
            fname = VARIANT_FILES.get(item, item)
            path = entry.path / fname
            if not path.is_file():
                raise RegistryError(f"{entry.task}/{entry.version}: missing artifact {fname}")
            expected = entry.sha256(fname)
            actual = sha256_file(path)
            if actual != expected:
                raise IntegrityError(path, expected, actual)

    def verify_all(self, entry: ModelEntry) -> None:
        """Check every artifact the card records that is present (models, tokenizer,
        labels): before a command rewrites the card, which re-hashes what is on disk."""
        self.verify(entry, [f for f in entry.card.get("artifacts", {}) if (entry.path / f).is_file()])

    def verify_variant(self, entry: ModelEntry, variant: str) -> Path:
        """Verify a variant's ONNX file, tokenizer and labels; return the ONNX path."""
        path = entry.variant_path(variant)
        self.verify(entry, entry.serving_files(variant))
        return path

    # ---- writing ------------------------------------------------------------------
    def register(
        self,
        task: str,
        version: str,
        card: Mapping[str, Any],
        *,
        files: Mapping[str, Path] | None = None,
        card_md: str | None = None,
    ) -> ModelEntry:
        """Write ``card.json`` (with artifact hashes) for ``task``/``version``.

        ``files`` maps destination names to source paths copied into the folder first;
        artifacts already in the folder are kept. ``labels.json`` is written from the
        fixed label set when absent. The card's ``artifacts`` field is recomputed.
        """
        path = self.version_dir(task, version)
        path.mkdir(parents=True, exist_ok=True)
        for dest, src in (files or {}).items():
            if Path(dest).name != dest:
                raise RegistryError(f"artifact name must be a plain file name: {dest!r}")
            if Path(src).resolve() != (path / dest).resolve():
                shutil.copyfile(src, path / dest)
        labels_file = path / "labels.json"
        if not labels_file.is_file():
            labels_file.write_text(json.dumps(list(LABELS[task])) + "\n", encoding="utf-8")
        if not (path / "tokenizer.json").is_file():
            raise RegistryError(f"{path}: tokenizer.json is required")
        if not any((path / f).is_file() for f in VARIANT_FILES.values()):
            raise RegistryError(f"{path}: at least one model.<variant>.onnx is required")
        artifacts = dict(card.get("artifacts") or {})
        for fname in ARTIFACT_FILES:
            if (path / fname).is_file():
                artifacts[fname] = sha256_file(path / fname)
        full = {**card, "task": task, "version": version, "artifacts": artifacts}
        _write_text_atomic(path / "card.json", json.dumps(full, indent=2, sort_keys=False) + "\n")
        if card_md is not None:
            _write_text_atomic(path / "CARD.md", card_md)
        return self.get(task, version)
