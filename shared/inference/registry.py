"""Model registry: versioned model folders under ``models/<task>/<version>/``.

Layout (see the model-registry contract)::

    models/<task>/<version>/model.{fp32,int8,fp16}.onnx
    models/<task>/<version>/tokenizer.json, labels.json, card.json, CARD.md
    models/<task>/PROMOTED            the version that serves

``card.json["artifacts"]`` maps every artifact file name to its sha256. Loading a
variant for serving must go through :meth:`Registry.read_variant` (the bytes read once and
verified, for a session built from them) or :meth:`Registry.verify_variant` /
:meth:`Registry.verify`, which refuse any file whose hash does not match.
Nothing here touches the disk at import time.

A variant the card records may be absent from the folder (the shipped versions record
``model.fp32.onnx``, which the repository leaves out): :meth:`ModelEntry.absent_variants`
names them, and a version serves as long as every device the card records a variant for
keeps one present (:data:`VARIANT_PREFERENCE`, :meth:`Registry.verify_servable`).

``card.json["variant_files"]`` (optional) maps a variant to another file name in the
folder than ``model.<variant>.onnx``: a re-quantize (``tonewatch models quantize``)
points the card at its new files under their temporary names first, so that the files
the card names always match it, then moves them to their usual names and drops the
field (see :func:`shared.training.pipeline.requantize`). Cards without it (all cards
before, and after a completed re-quantize) name the usual files.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.inference.device import Kind
from shared.labels import LABELS

__all__ = [
    "ARTIFACT_FILES",
    "VARIANT_FILES",
    "VARIANT_PREFERENCE",
    "IntegrityError",
    "ModelEntry",
    "ModelFile",
    "Registry",
    "RegistryError",
    "default_models_dir",
    "position_limit_of",
    "sha256_file",
]

VARIANT_FILES: Mapping[str, str] = {
    "fp32": "model.fp32.onnx",
    "int8": "model.int8.onnx",
    "fp16": "model.fp16.onnx",
}
"""Variant name -> ONNX file name inside a version folder."""

VARIANT_PREFERENCE: Mapping[Kind, tuple[str, ...]] = {
    "cpu": ("int8", "fp32"),
    "cuda": ("fp16", "fp32"),
    "tensorrt": ("fp32", "fp16"),
}
"""Variants a service loads on each device, best first (fp16 needs a GPU): what
:func:`shared.inference.engine.choose_variant` picks from, and what a version must keep
present to be promoted."""

ARTIFACT_FILES: tuple[str, ...] = (
    *VARIANT_FILES.values(),
    "tokenizer.json",
    "labels.json",
)
"""Files whose sha256 is recorded in ``card.json["artifacts"]`` when present."""

PROMOTED_FILE = "PROMOTED"
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
"""A version name, whole (``fullmatch``: ``$`` would let a trailing newline through)."""
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


_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "longformer", "bart", "mbart"})


def position_limit_of(config: Mapping[str, Any]) -> int | None:
    """Longest input (tokens) a Hugging Face ``config.json`` allows: ``max_position_embeddings``,
    less RoBERTa-style models' padding offset (514 -> 512)."""
    raw = config.get("max_position_embeddings")
    if not isinstance(raw, int) or raw <= 0:
        return None
    if config.get("model_type") in _OFFSET_POSITIONS:
        pad = config.get("pad_token_id")
        raw -= (pad if isinstance(pad, int) else 1) + 1
    return raw


def _check_task(task: str) -> None:
    if task not in LABELS:
        raise RegistryError(f"unknown task {task!r}; expected one of {sorted(LABELS)}")


def _check_version(version: str) -> None:
    if not _VERSION_RE.fullmatch(version) or version in {".", ".."}:
        raise RegistryError(
            f"invalid version {version!r}: use letters, digits, '.', '_', '+', '-' (at most 64 characters)"
        )


def _variant_files(card: Mapping[str, Any], where: Path) -> dict[str, str]:
    """The card's ``variant_files`` (variant -> plain file name), checked."""
    raw = card.get("variant_files")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(
        v in VARIANT_FILES and isinstance(f, str) and f and Path(f).name == f and f not in {".", ".."}
        for v, f in raw.items()
    ):
        raise RegistryError(f"{where}: variant_files must map variants {list(VARIANT_FILES)} to plain file names")
    return {str(v): str(f) for v, f in raw.items()}


def _read_json(path: Path) -> Any:
    """The JSON in ``path``; whatever keeps it from being read (absent, a folder, not UTF-8,
    not JSON) is a :class:`RegistryError` naming the file, so that a scan reports that one
    version invalid and lists the others."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RegistryError(f"missing file {path}") from exc
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"malformed JSON in {path}: {exc}") from exc


def _write_text_durable(path: Path, text: str) -> None:
    """:func:`shared.training.card.write_text_durable` (flushed file and folder, so that
    PROMOTED or a card names what is on the disk after a power cut); imported here, as that
    module imports this one."""
    from shared.training.card import write_text_durable

    write_text_durable(path, text)


def _copy_durable(src: Path, dest: Path) -> None:
    """``src`` copied to ``dest`` and flushed, before a card records its hash."""
    from shared.training.card import fsync_path

    shutil.copyfile(src, dest)
    fsync_path(dest)


def _has_entries(folder: Path) -> bool:
    """Whether ``folder`` holds anything (False if it cannot be read)."""
    try:
        return any(folder.iterdir())
    except OSError:
        return False


def _incomplete(folder: Path) -> str:
    """Why a version folder with files but no ``card.json`` is not a version."""
    return (
        f"{folder}: incomplete: no card.json (an interrupted train or export, or one still running?); "
        "remove the folder unless a run is writing it"
    )


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A variant's ONNX file read once and checked against its card: ``data`` is exactly
    the bytes whose hash is ``sha256``, whatever replaces ``path`` afterwards. It holds the
    whole file: build the session from it, then let it go."""

    path: Path
    data: bytes = field(repr=False)
    sha256: str


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

    def variant_file(self, variant: str) -> str:
        """File name of a variant in the folder: the card's ``variant_files`` entry, else
        ``model.<variant>.onnx``; any other name (``tokenizer.json``) is returned as is."""
        if variant not in VARIANT_FILES:
            return variant
        files = self.card.get("variant_files")
        named = files.get(variant) if isinstance(files, Mapping) else None
        return named if isinstance(named, str) else VARIANT_FILES[variant]

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

    @property
    def position_limit(self) -> int | None:
        """Most tokens the model accepts (its position embeddings): the card's
        ``max_positions``, else the base model's ``config.json`` the card names; None if unknown."""
        raw = self.card.get("max_positions")
        if raw is None:
            base = self.card.get("base_model")
            cfg_dir = base.get("path") if isinstance(base, Mapping) else None
            cfg_path = Path(str(cfg_dir)) / "config.json" if cfg_dir else None
            if cfg_path is None or not cfg_path.is_file():
                return None
            try:
                cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            raw = position_limit_of(cfg) if isinstance(cfg, dict) else None
        try:
            return int(raw) if raw is not None else None
        except (TypeError, ValueError):
            return None

    def variant_path(self, variant: str) -> Path:
        """Path of a variant's ONNX file; :class:`RegistryError` if unknown/absent."""
        if variant not in VARIANT_FILES:
            raise RegistryError(f"unknown variant {variant!r}; expected one of {list(VARIANT_FILES)}")
        path = self.path / self.variant_file(variant)
        if not path.is_file():
            have = ", ".join(self.available_variants()) or "none"
            raise RegistryError(f"{self.task}/{self.version} has no {variant} variant ({path.name}); available: {have}")
        return path

    def available_variants(self) -> tuple[str, ...]:
        """Variants whose ONNX file exists in the folder, in fp32, int8, fp16 order."""
        return tuple(v for v in VARIANT_FILES if (self.path / self.variant_file(v)).is_file())

    def recorded_variants(self) -> tuple[str, ...]:
        """Variants the card records a sha256 for, in fp32, int8, fp16 order."""
        artifacts = self.card.get("artifacts") or {}
        return tuple(v for v in VARIANT_FILES if self.variant_file(v) in artifacts)

    def absent_variants(self) -> tuple[str, ...]:
        """Variants the card records whose file is not in the folder (the shipped versions'
        fp32, which the repository leaves out), for listings to say so."""
        present = self.available_variants()
        return tuple(v for v in self.recorded_variants() if v not in present)

    def sha256(self, variant: str) -> str:
        """Recorded sha256 of a variant (``"int8"``) or an artifact file name."""
        fname = self.variant_file(variant)
        artifacts = self.card.get("artifacts")
        digest = artifacts.get(fname) if isinstance(artifacts, Mapping) else None
        if not isinstance(digest, str):
            raise RegistryError(f"{self.task}/{self.version}: card records no sha256 for {fname}")
        return digest

    def serving_files(self, variant: str) -> tuple[str, ...]:
        """Files to verify before serving ``variant``."""
        return (self.variant_file(variant), "tokenizer.json", "labels.json")


def _records_hash(entry: ModelEntry, fname: str) -> bool:
    """Whether the card records a sha256 for ``fname`` (:meth:`ModelEntry.sha256`, the
    check :meth:`Registry.read_variant` makes)."""
    try:
        entry.sha256(fname)
    except RegistryError:
        return False
    return True


def _check_devices(entry: ModelEntry) -> None:
    """:class:`RegistryError` unless a variant is present for the CPU (services fall back to
    it) and for every GPU kind the card records a variant for: a GPU service started with
    ``device=cuda`` loads only fp16 or fp32, and an absent file must not leave it nothing."""
    where = f"{entry.task}/{entry.version}"
    present, recorded = entry.available_variants(), entry.recorded_variants()
    have = ", ".join(present) or "none"
    if not any(v in present for v in VARIANT_PREFERENCE["cpu"]):
        raise RegistryError(f"{where} cannot serve: no CPU-usable variant (int8 or fp32); present: {have}")
    for kind, usable in VARIANT_PREFERENCE.items():
        absent = [v for v in usable if v in recorded and v not in present]
        if absent and not any(v in present for v in usable):
            raise RegistryError(
                f"{where} cannot serve on {kind}: no {' or '.join(usable)} variant "
                f"(recorded but absent: {', '.join(absent)}); present: {have}"
            )


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

    def _version_dirs(self, task: str) -> list[Path]:
        """The folders of ``task`` named like a version (nothing parsed)."""
        _check_task(task)
        task_dir = self.root / task
        if not task_dir.is_dir():
            return []
        return sorted(d for d in task_dir.iterdir() if d.is_dir() and _VERSION_RE.fullmatch(d.name))

    def version_names(self, task: str) -> list[str]:
        """Names of the version folders of ``task`` that hold a card (nothing parsed)."""
        return [d.name for d in self._version_dirs(task) if (d / "card.json").is_file()]

    def scan(self, task: str) -> tuple[list[ModelEntry], dict[str, str]]:
        """Valid versions of ``task`` (oldest first) and the invalid ones with their reason:
        one broken folder does not hide the others. A folder with files but no card (an
        export killed before it wrote one) is invalid (:func:`_incomplete`); an empty one
        (a version claimed by a run that has not started writing) is left out."""
        entries: list[ModelEntry] = []
        invalid: dict[str, str] = {}
        names = [d.name for d in self._version_dirs(task) if (d / "card.json").exists() or _has_entries(d)]
        for name in names:
            try:
                entries.append(self.get(task, name))
            except RegistryError as exc:
                invalid[name] = str(exc)
        return sorted(entries, key=lambda e: (str(e.card.get("created_at", "")), e.version)), invalid

    def list(self, task: str) -> list[ModelEntry]:
        """All valid registered versions of ``task`` (folders with a card), oldest first;
        a malformed folder is left out (:meth:`scan` names it)."""
        return self.scan(task)[0]

    def get(self, task: str, version: str) -> ModelEntry:
        """Parse one version folder; :class:`RegistryError` if absent or malformed."""
        path = self.version_dir(task, version)
        if not path.is_dir():
            known = self.version_names(task)
            raise RegistryError(f"no model {task}/{version} under {self.root}; known: {known}")
        if not (path / "card.json").exists() and _has_entries(path):
            raise RegistryError(_incomplete(path))
        card = _read_json(path / "card.json")
        if not isinstance(card, dict):
            raise RegistryError(f"{path / 'card.json'}: expected a JSON object")
        if card.get("task", task) != task:
            raise RegistryError(f"{path / 'card.json'}: task {card.get('task')!r} != {task!r}")
        _variant_files(card, path / "card.json")
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
        except (TypeError, ValueError, OverflowError) as exc:
            raise RegistryError(f"{path / 'card.json'}: bad max_length") from exc
        name = str(card.get("name") or f"tonewatch-{task}")
        return ModelEntry(task, version, path, labels, card, max_length, name)

    def promoted(self, task: str) -> ModelEntry:
        """The version named in ``<task>/PROMOTED``; a :class:`RegistryError` that names
        the marker when it names no usable version (else "no model x/y" does not say why
        that version was looked for)."""
        marker = self.root / task / PROMOTED_FILE
        version = self.promoted_version(task)
        if version is None:
            raise RegistryError(f"no promoted {task} model ({marker} missing); run `tonewatch models promote`")
        try:
            return self.get(task, version)
        except RegistryError as exc:
            raise RegistryError(f"{marker} names {version!r}: {exc}") from exc

    def promoted_version(self, task: str) -> str | None:
        """The version named in ``<task>/PROMOTED`` (not parsed), or None without one. A
        marker that cannot be read (not UTF-8) or is empty is a :class:`RegistryError`
        naming it, not a ``UnicodeDecodeError`` traceback or an "invalid version ''"."""
        _check_task(task)
        marker = self.root / task / PROMOTED_FILE
        if not marker.is_file():
            return None
        fix = "run `tonewatch models promote`"
        try:
            version = marker.read_text(encoding="utf-8-sig").strip()  # an editor's byte-order mark too
        except UnicodeDecodeError as exc:
            raise RegistryError(f"{marker} is not UTF-8 text; {fix}") from exc
        except OSError as exc:
            raise RegistryError(f"cannot read {marker}: {exc.strerror or exc}") from exc
        if not version:
            raise RegistryError(f"{marker} is empty; {fix}")
        return version

    def promote(self, task: str, version: str) -> None:
        """Make ``version`` the serving one after checking that it can serve
        (:meth:`verify_servable`); PROMOTED is replaced durably."""
        entry = self.get(task, version)
        self.verify_servable(entry)
        _write_text_durable(self.root / task / PROMOTED_FILE, version + "\n")

    # ---- integrity ----------------------------------------------------------------
    def verify(self, entry: ModelEntry, files: Iterable[str]) -> None:
        """Check ``files`` (names or variants) against the card hashes.

        Raises :class:`IntegrityError` on a mismatch, :class:`RegistryError` when a
        file is missing or has no recorded hash.
        """
        for item in files:
            fname = entry.variant_file(item)
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

    def verify_servable(self, entry: ModelEntry) -> None:
        """Refuse a version that cannot serve: the tokenizer, the labels or another recorded
        file that is not a model missing; no variant left for a device the card records one
        for (:data:`VARIANT_PREFERENCE`; the CPU always, as services fall back to it); a
        file a service would load (tokenizer, labels, any present variant) whose sha256 the
        card does not record, as :meth:`read_variant` then refuses it; or a present file
        whose hash does not match. A recorded variant whose file is absent is no obstacle by
        itself: the shipped versions record fp32, which is not in the repository."""
        where = f"{entry.task}/{entry.version}"
        recorded = list(entry.card.get("artifacts") or {})
        variant_files = {entry.variant_file(v) for v in VARIANT_FILES}
        needed = dict.fromkeys([*(f for f in recorded if f not in variant_files), "tokenizer.json", "labels.json"])
        missing = [f for f in needed if not (entry.path / f).is_file()]
        if missing:
            raise RegistryError(f"{where} cannot serve: missing artifact(s) {', '.join(missing)}")
        _check_devices(entry)
        loaded = ["tokenizer.json", "labels.json", *(entry.variant_file(v) for v in entry.available_variants())]
        unhashed = [f for f in loaded if not _records_hash(entry, f)]
        if unhashed:
            raise RegistryError(
                f"{where} cannot serve: its card records no sha256 for {', '.join(unhashed)} "
                f"({entry.path / 'card.json'} 'artifacts'), so a service cannot verify and refuses to load it"
            )
        self.verify(entry, dict.fromkeys([*loaded, *(f for f in recorded if (entry.path / f).is_file())]))

    def verify_variant(self, entry: ModelEntry, variant: str) -> Path:
        """Verify a variant's ONNX file, tokenizer and labels; return the ONNX path."""
        path = entry.variant_path(variant)
        self.verify(entry, entry.serving_files(variant))
        return path

    def read_variant(self, entry: ModelEntry, variant: str) -> ModelFile:
        """A variant's ONNX file read once and verified from those bytes (tokenizer and
        labels too), for a session built from the very bytes whose hash it reports: opening
        the file again by name could find another one renamed over it (a re-quantize)."""
        path = entry.variant_path(variant)
        self.verify(entry, ("tokenizer.json", "labels.json"))
        data = path.read_bytes()
        expected, actual = entry.sha256(variant), hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise IntegrityError(path, expected, actual)
        return ModelFile(path, data, actual)

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
        fixed label set when absent. The card's ``artifacts`` field is recomputed (for a
        variant the card's ``variant_files`` names, from that file).
        """
        path = self.version_dir(task, version)
        path.mkdir(parents=True, exist_ok=True)
        for dest, src in (files or {}).items():
            if Path(dest).name != dest:
                raise RegistryError(f"artifact name must be a plain file name: {dest!r}")
            if Path(src).resolve() != (path / dest).resolve():
                _copy_durable(Path(src), path / dest)
        labels_file = path / "labels.json"
        if not labels_file.is_file():
            _write_text_durable(labels_file, json.dumps(list(LABELS[task])) + "\n")
        if not (path / "tokenizer.json").is_file():
            raise RegistryError(f"{path}: tokenizer.json is required")
        named = _variant_files(card, path / "card.json")
        names = [named.get(v, f) for v, f in VARIANT_FILES.items()]
        if not any((path / f).is_file() for f in names):
            raise RegistryError(f"{path}: at least one model.<variant>.onnx is required")
        artifacts = dict(card.get("artifacts") or {})
        for fname in [*names, *(f for f in ARTIFACT_FILES if f not in VARIANT_FILES.values())]:
            if (path / fname).is_file():
                artifacts[fname] = sha256_file(path / fname)
        full = {**card, "task": task, "version": version, "artifacts": artifacts}
        _write_text_durable(path / "card.json", json.dumps(full, indent=2, sort_keys=False) + "\n")
        if card_md is not None:
            _write_text_durable(path / "CARD.md", card_md)
        return self.get(task, version)
