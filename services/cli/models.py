"""``tonewatch models``: train, export, quantize, evaluate, score, list, promote, predict.

Heavy libraries (torch, transformers, onnxruntime) load only inside the commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.inference.registry import Registry, RegistryError, default_models_dir
from shared.labels import LABELS

app = typer.Typer(
    help="Model lifecycle: train, export, quantize, evaluate, register, serve.",
    no_args_is_help=True,
)

TaskOpt = Annotated[str, typer.Option("--task", help="sentiment or intent.")]
VersionOpt = Annotated[str, typer.Option("--version", help="Registry version, e.g. v1.")]
DataOpt = Annotated[
    list[Path] | None,
    typer.Option("--data", help="Labelled data file(s); replaces the repository data."),
]


def _registry(ctx: typer.Context) -> Registry:
    root = (ctx.obj or {}).get("models_dir") if isinstance(ctx.obj, dict) else None
    return Registry(Path(root) if root else default_models_dir())


def _check_task(task: str) -> None:
    if task not in LABELS:
        raise typer.BadParameter(f"expected one of {sorted(LABELS)}", param_hint="--task")


@contextmanager
def _errors() -> Iterator[None]:
    """Turn expected failures into a one-line message: exit status 2 for invalid input
    (malformed data, a folder that is not a checkpoint, a version or work folder that is
    taken), 1 for the rest."""
    from shared.training.datasets import DataError
    from shared.training.export import CheckpointError
    from shared.training.pipeline import DestinationError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        yield
    except (DataError, CheckpointError, DestinationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except (RegistryError, RuntimeError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _check_distillation(teacher: Path | None, alpha: float, temperature: float, transfer: int) -> None:
    if teacher is None:
        if transfer:
            raise typer.BadParameter("--transfer-reviews needs --teacher", param_hint="--transfer-reviews")
        return
    if not teacher.is_dir():
        raise typer.BadParameter(f"{teacher} is not a checkpoint folder", param_hint="--teacher")
    if not 0.0 <= alpha <= 1.0:
        raise typer.BadParameter(f"{alpha} is not within [0, 1]", param_hint="--distill-alpha")
    if temperature <= 0 or transfer < 0:
        raise typer.BadParameter("the temperature must be > 0 and --transfer-reviews >= 0")


def _summary(entry: Any) -> str:
    m = entry.card.get("metrics", {})
    parts = [
        f"{v}: acc {m[v]['accuracy']:.4f} macro-F1 {m[v]['macro_f1']:.4f}"
        for v in ("fp32", "int8", "fp16")
        if m.get(v, {}).get("accuracy") is not None
    ]
    return f"{entry.task}/{entry.version} at {entry.path}\n  " + "\n  ".join(parts)


@app.callback()
def main(
    ctx: typer.Context,
    models_dir: Annotated[
        Path | None,
        typer.Option("--models-dir", envvar="TW_MODELS_DIR", help="Registry root."),
    ] = None,
) -> None:
    """Model lifecycle commands (registry root: ``models/`` unless ``--models-dir``)."""
    ctx.obj = {"models_dir": models_dir}


def _training_record(checkpoint: Path) -> dict[str, Any]:
    """The training record next to ``checkpoint`` (see ``training_meta``); a corrupt
    ``tonewatch_train.json`` is invalid input, refused before a version is claimed."""
    from shared.training.export import CheckpointError
    from shared.training.pipeline import training_meta

    record = checkpoint / "tonewatch_train.json"
    try:
        meta = training_meta(checkpoint)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{record} is not valid JSON: {exc}; remove or repair it") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{record}: expected a JSON object; remove or repair it")
    return meta


def _path_arg(path: Path) -> str:
    """``path`` for a recorded command that is run from the repository root: relative to
    it when inside, else absolute (a path as typed is relative to wherever it was typed)."""
    from shared.training.datasets import DATA_DIR

    resolved, root = path.expanduser().resolve(), DATA_DIR.parent.resolve()
    return shlex.quote(str(resolved.relative_to(root) if resolved.is_relative_to(root) else resolved))


def _command(ctx: typer.Context, sub: str, flags: list[str]) -> str:
    """The recorded command: ``--models-dir`` kept when the run used another registry."""
    models_dir = (ctx.obj or {}).get("models_dir")
    where = f" --models-dir {_path_arg(Path(models_dir))}" if models_dir else ""
    return f"tonewatch models{where} {sub} " + " ".join(flags)


@app.command()
def train(
    ctx: typer.Context,
    task: TaskOpt,
    base: Annotated[Path | None, typer.Option(help="Local HF encoder folder.")] = None,
    data: DataOpt = None,
    epochs: Annotated[int, typer.Option(help="0: the task default (6).")] = 0,
    max_steps: Annotated[int, typer.Option(help="Stop after N steps (0: off).")] = 0,
    subset: Annotated[int, typer.Option(help="Cap train at N rows (smoke runs).")] = 0,
    out: Annotated[Path | None, typer.Option(help="Work dir for the checkpoint.")] = None,
    version: Annotated[str, typer.Option(help="Version (default YYYY.MM.DD-N).")] = "",
    promote: Annotated[bool, typer.Option(help="Promote after registering.")] = False,
    lr: Annotated[float, typer.Option(help="0: the task default (8e-5).")] = 0.0,
    batch_size: Annotated[int, typer.Option(help="0: the task default (16).")] = 0,
    max_length: Annotated[int, typer.Option(help="0: 64 sentiment, 48 intent.")] = 0,
    seed: int = 13,
    patience: Annotated[int, typer.Option(help="Epochs without a better validation macro-F1.")] = 3,
    class_weights: Annotated[
        bool | None, typer.Option(help="Inverse-frequency loss weights (default: on for sentiment).")
    ] = None,
    pooling: Annotated[str, typer.Option(help='"mean" or "cls"; "": cls sentiment, mean intent.')] = "",
    temperature_scaling: Annotated[bool, typer.Option(help="Fit T on validation.")] = True,
    reviews: Annotated[int, typer.Option(help="Add N movie-review snippets.")] = 0,
    teacher: Annotated[
        Path | None, typer.Option(help="Fine-tuned checkpoint to distil from (its soft labels join the loss).")
    ] = None,
    distill_alpha: Annotated[float, typer.Option(help="With --teacher: weight of the gold labels' loss.")] = 0.5,
    distill_temperature: Annotated[float, typer.Option(help="With --teacher: softmax temperature.")] = 2.0,
    transfer_reviews: Annotated[
        int, typer.Option(help="With --teacher: N unlabelled movie-review snippets it labels for the student.")
    ] = 0,
    fp16: Annotated[bool, typer.Option(help="Also build model.fp16.onnx.")] = True,
    allow_no_validation: Annotated[
        bool,
        typer.Option(
            help="Train even if the validation split is empty (e.g. authored rows only): the last epoch's"
            " weights are kept, no temperature scaling."
        ),
    ] = False,
    checkpoint_only: Annotated[
        bool, typer.Option(help="Stop after training: keep the checkpoint, register nothing (e.g. a teacher).")
    ] = False,
    progress: bool = True,
) -> None:
    """Fine-tune, then export, quantize, evaluate and register in one go."""
    _check_task(task)
    _check_distillation(teacher, distill_alpha, distill_temperature, transfer_reviews)
    if base is not None and not (base / "config.json").is_file():
        # transformers takes a path it cannot find for a hub repo id: a misleading OSError
        raise typer.BadParameter(
            f"{base} is not a local Hugging Face model folder (no config.json)", param_hint="--base"
        )
    if checkpoint_only and promote:
        raise typer.BadParameter("nothing is registered with --checkpoint-only", param_hint="--promote")
    from shared.training.pipeline import PipelineOptions, run
    from shared.training.train import TrainConfig

    cfg = TrainConfig(
        task=task,
        base=str(base or ""),
        max_length=max_length,
        epochs=epochs,
        max_steps=max_steps,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        patience=patience,
        class_weights=class_weights,
        pooling=pooling,
        temperature_scaling=temperature_scaling,
        teacher=str(teacher or ""),
        distill_alpha=distill_alpha,
        distill_temperature=distill_temperature,
    )
    flags = [
        f"--task {task}",
        f"--epochs {cfg.epochs}",
        f"--lr {cfg.lr!r}",
        f"--batch-size {cfg.batch_size}",
        f"--max-length {cfg.max_length}",
        f"--pooling {cfg.pooling}",
        f"--seed {seed}",
        f"--patience {patience}",
    ]
    flags += [f"--max-steps {max_steps}"] * bool(max_steps)
    flags += [f"--subset {subset}"] * bool(subset) + [f"--reviews {reviews}"] * bool(reviews)
    flags += ["--class-weights" if cfg.class_weights else "--no-class-weights"]
    flags += ["--no-temperature-scaling"] * (not temperature_scaling)
    if base is not None:
        flags += [f"--base {_path_arg(base)}"]
    if teacher:
        flags += [f"--teacher {_path_arg(teacher)}", f"--distill-alpha {distill_alpha!r}"]
        flags += [f"--distill-temperature {distill_temperature!r}"]
        flags += [f"--transfer-reviews {transfer_reviews}"] * bool(transfer_reviews)
    flags += [f"--data {_path_arg(p)}" for p in data or []]
    flags += ["--no-fp16"] * (not fp16) + ["--allow-no-validation"] * allow_no_validation
    # no --version: the recorded one is taken once this run registers it
    reproduce = _command(ctx, "train", flags)
    with _errors():
        reg = _registry(ctx)
        opts = PipelineOptions(
            cfg,
            version,
            list(data or []),
            reviews,
            transfer_reviews,
            subset,
            out,
            fp16=fp16,
            progress=progress,
            promote=promote,
            checkpoint_only=checkpoint_only,
            allow_no_validation=allow_no_validation,
            reproduce=reproduce,
        )
        entry = run(reg, opts)
    if isinstance(entry, Path):
        meta = json.loads((entry / "tonewatch_train.json").read_text(encoding="utf-8"))
        val = meta["best_val_macro_f1"]
        line = f"checkpoint {entry} (not registered): validation macro-F1 " + ("n/a" if val is None else f"{val:.4f}")
        if "test" in meta:
            t = meta["test"]
            line += f"; test ({t['n']} rows, fp32) accuracy {t['accuracy']:.4f} macro-F1 {t['macro_f1']:.4f}"
        typer.echo(line)
        return
    typer.echo(_summary(entry) + ("\n  promoted" if promote else ""))


@app.command()
def export(
    ctx: typer.Context,
    task: TaskOpt,
    from_: Annotated[Path, typer.Option("--from", help="Fine-tuned HF checkpoint.")],
    version: Annotated[str, typer.Option(help="Version (default YYYY.MM.DD-N).")] = "",
    data: DataOpt = None,
    max_length: Annotated[int, typer.Option(help="0: 64 sentiment, 48 intent.")] = 0,
    fp16: bool = True,
    labels: Annotated[
        str,
        typer.Option(
            help="The task's label of each logit, in logit order, comma-separated (needed when the checkpoint"
            " names them LABEL_0, LABEL_1, ... or otherwise, e.g. neg,neu,pos)."
        ),
    ] = "",
) -> None:
    """Package an existing checkpoint: ONNX + parity, quantize, evaluate, register."""
    _check_task(task)
    from shared.training.datasets import load_task
    from shared.training.pipeline import next_version, package
    from shared.training.train import TASK_DEFAULTS

    length = max_length or TASK_DEFAULTS[task]["max_length"]
    names = [n.strip() for n in labels.split(",")] if labels else None
    flags = [f"--task {task}", f"--from {_path_arg(from_)}", f"--max-length {length}"]
    flags += [f"--data {_path_arg(p)}" for p in data or []]
    flags += ["--no-fp16"] * (not fp16) + [f"--labels {shlex.quote(labels)}"] * bool(labels)
    with _errors():
        reg = _registry(ctx)
        bundle = load_task(task, data or None)
        training = _training_record(from_)  # before next_version claims a folder
        ver = version or next_version(reg, task)
        entry = package(
            reg,
            task,
            ver,
            from_,
            bundle,
            max_length=length,
            training=training,
            fp16=fp16,
            reproduce=_command(ctx, "export", flags),
            labels=names,
        )
    typer.echo(_summary(entry))


@app.command()
def quantize(ctx: typer.Context, task: TaskOpt, version: VersionOpt, data: DataOpt = None) -> None:
    """Rebuild the int8 and fp16 variants from model.fp32.onnx, re-evaluate. Safe to
    interrupt: the version keeps serving its old files or its new ones, never a mix, and
    running it again completes (see shared.training.pipeline.requantize)."""
    _check_task(task)
    from shared.training.datasets import load_task
    from shared.training.pipeline import requantize

    with _errors():
        reg = _registry(ctx)
        reg.get(task, version)  # an unknown version before the data is loaded
        entry = requantize(reg, task, version, load_task(task, data or None))
    typer.echo(_summary(entry))


@app.command()
def evaluate(ctx: typer.Context, task: TaskOpt, version: VersionOpt, data: DataOpt = None) -> None:
    """Re-evaluate every present variant on the test split; rewrite the card."""
    _check_task(task)
    from shared.training.datasets import load_task
    from shared.training.pipeline import evaluate_and_write, version_lock

    with _errors():
        reg = _registry(ctx)
        reg.get(task, version)  # an unknown version before the lock
        with version_lock(reg.version_dir(task, version)):
            entry = reg.get(task, version)
            reg.verify_all(entry)  # the card is rewritten, re-hashing what is on disk
            entry = evaluate_and_write(reg, task, version, load_task(task, data or None), dict(entry.card))
    typer.echo(_summary(entry))
    evaluation = entry.card["evaluation"]
    overlap = evaluation.get("training_overlap")
    if overlap != 0:  # stated in the card too
        typer.echo(
            f"  {'note' if overlap is None else 'not a held-out evaluation'}: {evaluation['description']}", err=True
        )


@app.command()
def score(
    ctx: typer.Context,
    task: TaskOpt,
    input_: Annotated[
        Path,
        typer.Option("--input", help="Labelled file: {text, label} JSONL, text,label CSV or gold row,label CSV."),
    ],
    version: Annotated[
        list[str] | None,
        typer.Option("--version", help="Repeat to compare versions side by side. Default: the promoted one."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="All metrics as JSON (a list for several versions).")] = False,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Also record the summary in the card (section 'Other held-out sets'); refused when a row"
            " of the file is in the model's training or validation data.",
        ),
    ] = False,
) -> None:
    """Metrics of every variant on a labelled file held out from training; the card changes only with --record.
    Rows the model was trained or selected on (same normalised text) are counted and reported."""
    _check_task(task)
    from shared.training.datasets import DataError, load_file
    from shared.training.evaluate import evaluate_dir
    from shared.training.pipeline import card_variants, version_lock

    with _errors(), contextlib.ExitStack() as held:
        reg = _registry(ctx)
        entries = [reg.get(task, v) for v in version] if version else [reg.promoted(task)]
        if record:  # the card is rewritten: no quantize or evaluate may change it meanwhile
            for path in dict.fromkeys(e.path for e in entries):
                held.enter_context(version_lock(path))
            entries = [reg.get(task, e.version) for e in entries]
        for entry in entries:
            reg.verify_all(entry)  # --record rewrites the card, re-hashing what is on disk
        examples = load_file(input_, task)
        if not examples:
            raise DataError(f"{input_}: no labelled rows")
        texts, gold = [e.text for e in examples], [e.label for e in examples]
        overlaps = {e.version: _training_overlap(e.card, texts) for e in entries}
        if record:
            _check_held_out(task, input_, len(texts), overlaps)
        scored = []
        for entry in entries:
            with card_variants(entry.path, entry.card) as where:  # the files the card names
                scored.append((entry, evaluate_dir(where, texts, gold, entry.labels)))
        if record:
            for entry, results in scored:
                _record_score(reg, entry, input_, len(examples), results)
    notes = {v: _overlap_note(len(texts), *o) for v, o in overlaps.items()}
    if as_json:
        for ver, msg in notes.items():
            if msg:
                typer.echo(f"{task}/{ver}: {msg}", err=True)
        docs = [
            {
                "task": task,
                "version": e.version,
                "input": str(input_),
                "rows": len(examples),
                "training_overlap": overlaps[e.version][0],
                "metrics": results,
            }
            for e, results in scored
        ]
        typer.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
        return
    absent = set(LABELS[task]) - set(gold)
    note = f"; {len(absent)} of {len(LABELS[task])} labels absent, macro-F1 counts them as 0" if absent else ""
    typer.echo(f"{task} on {input_} ({len(examples)} rows{note})")
    for entry, results in scored:
        if notes[entry.version]:
            typer.echo(f"  {entry.version}: {notes[entry.version]}")
        for variant, m in results.items():
            name = f"{entry.version} {variant}"
            if "accuracy" not in m:
                typer.echo(f"  {name}: {m.get('status')}")
                continue
            present = [(lab, c) for lab, c in m["per_class"].items() if c["support"]]
            weak = ", ".join(f"{lab} {100 * c['f1']:.1f}" for lab, c in sorted(present, key=lambda kv: kv[1]["f1"])[:3])
            typer.echo(
                f"  {name}: accuracy {m['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f} ECE {m['ece']:.4f}"
                f"  (lowest F1: {weak})"
            )


def _training_overlap(card: Mapping[str, Any], texts: list[str]) -> tuple[int | None, str]:
    """How many ``texts`` the model of ``card`` was trained or selected on (None: unknown),
    and where its training rows come from (or why they are unknown)."""
    from shared.training.heldout import training_rows

    rows = training_rows(card)
    if isinstance(rows, str):
        return None, rows
    return rows.overlap(texts), rows.basis


def _overlap_note(n: int, overlap: int | None, why: str) -> str:
    if overlap is None:
        return f"not known to be held out: its training rows are unknown ({why})"
    if overlap:
        return f"NOT held out: {overlap} of these {n} rows are in its training/validation data (normalised text)"
    return ""


def _check_held_out(task: str, path: Path, n: int, overlaps: dict[str, tuple[int | None, str]]) -> None:
    """--record files a result under "Labelled files outside the training data": refused
    unless no row is one a version was trained or selected on."""
    from shared.training.datasets import DataError

    for version, (overlap, why) in overlaps.items():
        if overlap is None:
            raise DataError(f"--record: {task}/{version}'s training rows are unknown ({why}); score without --record")
        if overlap:
            raise DataError(
                f"--record: {overlap} of the {n} rows of {path} are in {task}/{version}'s training/validation "
                "data (same normalised text), so it is no held-out set: remove those rows, or score without --record"
            )


def _record_score(reg: Registry, entry: Any, path: Path, rows: int, results: dict[str, dict[str, Any]]) -> None:
    """Keep the summary in card.json (keyed by the file) and re-render CARD.md."""
    from shared.inference.registry import sha256_file
    from shared.training.card import render_markdown, utc_now
    from shared.training.datasets import display_path

    card = dict(entry.card)
    external = dict(card.get("external_evaluations") or {})
    external[display_path(path)] = {
        "sha256": sha256_file(path),
        "rows": rows,
        "training_overlap": 0,
        "scored_at": utc_now(),
        "metrics": {
            v: {k: m[k] for k in ("accuracy", "macro_f1", "ece")} for v, m in results.items() if "accuracy" in m
        },
    }
    card["external_evaluations"] = external
    reg.register(entry.task, entry.version, card, card_md=render_markdown(card, card.get("notes", [])))


@app.command("list")
def list_(
    ctx: typer.Context,
    task: Annotated[str | None, typer.Option(help="Only this task.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Registered versions, their variants and test metrics; * marks promoted."""
    tasks = [task] if task else list(LABELS)
    for t in tasks:
        _check_task(t)
    rows: list[dict[str, Any]] = []
    with _errors():
        reg = _registry(ctx)
        for t in tasks:
            promoted, marker_problem = _promoted_marker(reg, t)
            entries, invalid = reg.scan(t)
            for e in entries:
                m = e.card.get("metrics", {}).get("int8", {})
                rows.append(
                    {
                        "task": t,
                        "version": e.version,
                        "name": e.name,
                        "promoted": e.version == promoted,
                        "variants": list(e.available_variants()),
                        "absent_variants": list(e.absent_variants()),
                        "created_at": e.card.get("created_at"),
                        "int8_accuracy": m.get("accuracy"),
                        "int8_macro_f1": m.get("macro_f1"),
                    }
                )
            for version, reason in invalid.items():
                rows.append({"task": t, "version": version, "promoted": version == promoted, "invalid": reason})
            if marker_problem is None and promoted is not None and promoted not in invalid:
                if all(e.version != promoted for e in entries):
                    marker_problem = "PROMOTED names it, but it is not registered; run `tonewatch models promote`"
            if marker_problem is not None:
                rows.append({"task": t, "version": promoted or "PROMOTED", "promoted": True, "invalid": marker_problem})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        mark = "*" if r["promoted"] else " "
        if "invalid" in r:
            typer.echo(f"{mark} {r['task']:<9} {r['version']:<16} INVALID: {r['invalid']}")
            continue
        f1 = "n/a" if r["int8_macro_f1"] is None else f"{r['int8_macro_f1']:.4f}"
        variants = ",".join(r["variants"]) + "".join(f" ({v} absent)" for v in r["absent_variants"])
        typer.echo(f"{mark} {r['task']:<9} {r['version']:<16} {variants:<15} int8 macro-F1 {f1}  {r['created_at']}")


def _promoted_marker(reg: Registry, task: str) -> tuple[str | None, str | None]:
    """(the version ``task``'s PROMOTED names, why it names none): an unreadable marker is
    a row of ``list``, not an error that hides every version."""
    try:
        return reg.promoted_version(task), None
    except RegistryError as exc:
        return None, str(exc)


@app.command()
def promote(ctx: typer.Context, task: TaskOpt, version: VersionOpt) -> None:
    """Make VERSION the one that serves (artifacts verified first)."""
    _check_task(task)
    with _errors():
        _registry(ctx).promote(task, version)
    typer.echo(f"promoted {task}/{version}")
    # the registry is read at start-up only: nothing running changes its model
    typer.echo(
        f"the classifier serves it after a restart (every replica; one started with "
        f"TW_CLASSIFIER_{task.upper()}_VERSION keeps that version); GET /v1/status shows what it serves"
    )


@app.command()
def predict(
    ctx: typer.Context,
    task: TaskOpt,
    input_: Annotated[
        Path,
        typer.Option(
            "--input",
            help="JSONL of {id, text}; an id is a string or an integer, each at most once. A line without"
            ' id gets "line N" (N its line number; an input id of that form is refused, so none collides);'
            " the output keeps the input order, blank lines left out. '-': standard input.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            help="JSONL to write; replaced only once complete (an interrupted run leaves it as it was)."
            " '-': standard output.",
        ),
    ],
    version: Annotated[str, typer.Option(help="Default: the promoted version.")] = "",
    variant: Annotated[str, typer.Option(help="auto, fp32, int8 or fp16.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or tensorrt.")] = "auto",
) -> None:
    """Classify a JSONL file with the promoted (or given) model. Exit 1 if some lines were
    error records (they are in the output, in place)."""
    _check_task(task)
    from shared.training.predict import STDIO, predict_file

    _check_predict_paths(input_, output)
    _inference_settings(device, variant)
    with _errors(), _sigterm_exits():
        reg = _registry(ctx)
        entry = reg.get(task, version) if version else reg.promoted(task)
        clf = _classifier(reg, entry, variant, device)
        try:
            stats = predict_file(clf.predict_proba, entry.labels, input_, output)
        except (KeyboardInterrupt, SystemExit):
            left = "what was written is on standard output" if output == STDIO else f"{output} left as it was"
            typer.echo(f"interrupted: {left}", err=True)
            raise
        info = clf.describe()
    typer.echo(
        f"{entry.task}/{entry.version} ({info['variant']} on {info['provider']}): "
        f"{stats.predicted} predicted, {stats.errors} errors -> {output}",
        err=True,
    )
    if stats.errors:
        raise typer.Exit(1)  # rejected input lines, as for `ingest file`; their error records are in the output


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM raises :class:`SystemExit` (status 143, as a kill) instead of ending the
    process at once, so that clean-ups run (predict's temporary output file is removed);
    the previous handler is restored after. Only the main thread can set one."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _check_predict_paths(src: Path, dst: Path) -> None:
    """Refuse (exit 2) an input that cannot be read or an output that cannot be written
    before the model loads, not as exit 1 after it; the output's missing folders are
    created (by the write), but not under a file nor in a folder that cannot be written.
    ``-`` is standard input / output."""
    from shared.training.predict import STDIO, same_file, stdout_is

    if src != STDIO:
        if not src.exists():
            raise typer.BadParameter(f"{src} does not exist", param_hint="--input")
        if src.is_dir():
            raise typer.BadParameter(f"{src} is a folder, not a JSONL file", param_hint="--input")
        if not os.access(src, os.R_OK):
            raise typer.BadParameter(f"{src} is not readable", param_hint="--input")
    if dst == STDIO:
        if src != STDIO and stdout_is(src):  # `--output - >> in.jsonl`: it would read its own records for ever
            raise typer.BadParameter(
                "standard output is the input file: its predictions would be read back as input", param_hint="--output"
            )
        return
    if dst.is_dir():
        raise typer.BadParameter(f"{dst} is a folder: name the file to write", param_hint="--output")
    if dst.exists() and not dst.is_file():  # /dev/stdout, a pipe: written directly
        if not os.access(dst, os.W_OK):
            raise typer.BadParameter(f"{dst} is not writable", param_hint="--output")
    else:
        _check_output_folder(dst)
    if src != STDIO and same_file(src, dst):  # a hard link too: opening the output would empty the input
        raise typer.BadParameter("must not be the input file (it would be emptied)", param_hint="--output")


def _check_output_folder(dst: Path) -> None:
    """Refuse an output whose folder (or, if it is missing, the folder it would be created
    in) is not a folder or cannot be written: before, that was found only after the model
    had loaded, as exit 1 and a bare OS error. Missing folders are created later, by the
    write itself, so that a run refused before it (a model that does not load) leaves none."""
    from shared.training.predict import output_folder

    folder = output_folder(dst)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder, so {dst} cannot be written", param_hint="--output")
    if not os.access(folder, os.W_OK | os.X_OK):  # also a read-only file system, an immutable folder (root too)
        raise typer.BadParameter(f"{folder} is not writable, so {dst} cannot be written", param_hint="--output")


def _inference_settings(device: str, variant: str) -> Any:
    """--device and --variant as the services' settings; a bad value is a usage error naming
    the accepted ones (pydantic's last line is only a link)."""
    from pydantic import ValidationError

    from shared.inference.settings import InferenceSettings

    try:
        return InferenceSettings.model_validate({"device": device, "variant": variant})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "--" + ".".join(str(part) for part in err["loc"])
        raise typer.BadParameter(f"{err['input']!r}: {err['msg']}", param_hint=where) from exc


def _classifier(reg: Registry, entry: Any, variant: str, device: str) -> Any:
    """The services' inference engine on a registry entry (verifies hashes first)."""
    from shared.inference.engine import Classifier

    return Classifier.load(entry, _inference_settings(device, variant), registry=reg)
