"""Classifier models over a local encoder, checkpoints, temperature scaling.

Two heads:
- ``cls``: the standard ``AutoModelForSequenceClassification`` (pooler on [CLS]);
  saved with ``save_pretrained``; any HF fine-tuned checkpoint loads this way.
- ``mean``: attention-masked mean of the last hidden states, dropout, linear layer.
  Sentence-transformer encoders such as all-MiniLM-L6-v2 were trained for mean
  pooling. Saved as the encoder (``save_pretrained``) plus ``tonewatch_head.json``
  and ``tonewatch_head.safetensors``.

Both return logits from ``forward(input_ids, attention_mask)``. Temperature scaling
divides the final linear layer by T fitted on validation (argmax is unchanged).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.labels import LABELS

if TYPE_CHECKING:
    import torch

HEAD_JSON = "tonewatch_head.json"
HEAD_WEIGHTS = "tonewatch_head.safetensors"
POOLINGS = ("cls", "mean")


def build_mean_classifier(encoder: Any, num_labels: int, dropout: float = 0.1) -> torch.nn.Module:
    """Mean-pooling classifier around an ``AutoModel`` encoder."""
    import torch

    class MeanPoolClassifier(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(dropout)
            self.classifier = torch.nn.Linear(int(encoder.config.hidden_size), num_labels)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            return self.classifier(self.dropout(pooled))

    return MeanPoolClassifier()


def logits_of(out: Any) -> torch.Tensor:
    """The logits tensor of a model output (HF output object or raw tensor)."""
    return out.logits if hasattr(out, "logits") else out


def encoder_kwargs(path: Path) -> dict[str, Any]:
    """``{"add_pooling_layer": False}`` when the ``AutoModel`` class of the encoder in
    ``path`` takes it (BERT, RoBERTa, MPNet...), else nothing (DistilBERT, DeBERTa-v2, ELECTRA have no pooler
    and refuse the keyword): the mean-pooling head does not use the pooler."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    try:
        found = MODEL_MAPPING[type(config)]
    except KeyError:
        return {}
    classes = found if isinstance(found, tuple) else (found,)
    takes = all("add_pooling_layer" in inspect.signature(c.__init__).parameters for c in classes)
    return {"add_pooling_layer": False} if takes else {}


def _load_encoder(path: Path, extra: dict[str, Any]) -> tuple[Any, list[str]]:
    """The ``AutoModel`` encoder in ``path`` (without its pooler where it has one) and the
    names of the weights it lacks."""
    from transformers import AutoModel

    encoder, info = AutoModel.from_pretrained(
        str(path), local_files_only=True, output_loading_info=True, **encoder_kwargs(path), **extra
    )
    return encoder, list(info.get("missing_keys") or [])


def build_model(base: Path, task: str, pooling: str, *, eager: bool = False) -> torch.nn.Module:
    """A fresh classifier over ``base`` for ``task`` (offline)."""
    from transformers import AutoModelForSequenceClassification

    labels = LABELS[task]
    extra: dict[str, Any] = {"attn_implementation": "eager"} if eager else {}
    if pooling == "mean":
        encoder, _ = _load_encoder(base, extra)
        return build_mean_classifier(encoder, len(labels))
    if pooling != "cls":
        raise ValueError(f"pooling must be one of {POOLINGS}")
    return AutoModelForSequenceClassification.from_pretrained(
        str(base),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
        local_files_only=True,
        ignore_mismatched_sizes=True,
        **extra,
    )


def final_linear(model: Any) -> Any:
    """The output ``Linear`` layer: our mean-pooling head, BERT's ``classifier``, or the
    last ``Linear`` of a two-layer head (RoBERTa, MPNet, DeBERTa: ``dense`` then ``out_proj``)."""
    import torch

    head = model.classifier
    if isinstance(head, torch.nn.Linear):
        return head
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise TypeError(f"no Linear layer in the classifier head {type(head).__name__}")
    return linears[-1]


def save_checkpoint(model: Any, tok: Any, path: Path, task: str, pooling: str) -> None:
    """Write a checkpoint folder that :func:`load_checkpoint` reads back."""
    path.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(path))
    if pooling == "cls":
        model.save_pretrained(str(path))
        return
    from safetensors.torch import save_file

    model.encoder.save_pretrained(str(path))
    head = {k: v.detach().contiguous() for k, v in model.classifier.state_dict().items()}
    save_file(head, str(path / HEAD_WEIGHTS))
    meta = {"pooling": pooling, "labels": list(LABELS[task])}
    (path / HEAD_JSON).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def check_no_missing_weights(path: Path, missing: Sequence[str], base_prefix: str | None) -> None:
    """Refuse a checkpoint that lacks weights the model needs (transformers would
    initialise them at random, saying so only in a log line, and parity cannot tell): an
    encoder saved without its classification head (``BertModel.save_pretrained``, a base
    model folder) above all. ``base_prefix``: the model's ``base_model_prefix`` (keys outside
    it are the head's), None for a bare encoder. Raises
    :class:`~shared.training.export.CheckpointError`."""
    import shlex

    from shared.training.export import CheckpointError

    if not missing:
        return
    head = sorted(k for k in missing if base_prefix is not None and not k.startswith(f"{base_prefix}."))
    if head:
        raise CheckpointError(
            f"{path} is not a fine-tuned classifier: head weights {', '.join(head)} missing "
            "(they would be initialised at random); is it a base model? Train a classifier on it with "
            f"`tonewatch models train --task TASK --base {shlex.quote(str(path))}`"
        )
    keys = sorted(missing)
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    raise CheckpointError(f"{path}: weights {shown} missing from the checkpoint (they would be initialised at random)")


def load_checkpoint(path: Path, *, eager: bool = True) -> tuple[Any, list[str] | None]:
    """(model in eval mode, label names in logit order or None if unnamed).

    Raises :class:`~shared.training.export.CheckpointError` when weights are missing
    (see :func:`check_no_missing_weights`)."""
    from transformers import AutoModelForSequenceClassification

    extra: dict[str, Any] = {"attn_implementation": "eager"} if eager else {}
    head_json = path / HEAD_JSON
    if head_json.is_file():
        from safetensors.torch import load_file

        meta = json.loads(head_json.read_text(encoding="utf-8"))
        encoder, missing = _load_encoder(path, extra)
        check_no_missing_weights(path, missing, None)
        model = build_mean_classifier(encoder, len(meta["labels"]))
        model.classifier.load_state_dict(load_file(str(path / HEAD_WEIGHTS)))
        return model.train(False), list(meta["labels"])
    model, info = AutoModelForSequenceClassification.from_pretrained(
        str(path), local_files_only=True, output_loading_info=True, **extra
    )
    check_no_missing_weights(path, list(info.get("missing_keys") or []), str(model.base_model_prefix))
    names = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
    return model.train(False), names


def fit_temperature(logits: np.ndarray[Any, Any], gold: Sequence[int]) -> float:
    """Temperature minimising validation NLL (grid over 0.5..10, log-spaced)."""
    if len(gold) == 0:
        return 1.0
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(gold, dtype=np.int64)
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.5), np.log(10.0), 200)):
        s = z / t
        s = s - s.max(axis=1, keepdims=True)
        nll = float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(len(y)), y]))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def apply_temperature(model: Any, temperature: float) -> None:
    """Divide the final linear layer by ``temperature`` in place."""
    import torch

    layer = final_linear(model)
    with torch.no_grad():
        layer.weight.div_(temperature)
        if layer.bias is not None:
            layer.bias.div_(temperature)
