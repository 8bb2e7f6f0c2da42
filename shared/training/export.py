"""Export a Hugging Face sequence-classification checkpoint to ONNX, with parity.

``torch.onnx.export`` (TorchScript exporter, ``dynamo=False``), opset 17, inputs
``input_ids`` and ``attention_mask`` (int64), output ``logits`` (float32), dynamic
batch and sequence axes. Logits are re-ordered into the fixed label order of the
task when the checkpoint names its labels differently (e.g. a FinBERT checkpoint); a
checkpoint that does not name them (``LABEL_0``...), or names them otherwise (``neg``,
``neu``, ``pos``), needs the task's names given in its logit order (``--labels``). A
folder lacking weights (an encoder without its classification head) is refused, and so
is one whose ``config.json`` does not fit its weights (a label count other than the
classifier head's rows, e.g. a hand-edited ``id2label``) or whose weight files cannot be
read (truncated, corrupt, a missing shard): shapes are read from the files' headers and
compared with the model the config describes, before transformers loads anything.
The parity check runs ONNX Runtime (CPU) and PyTorch on the same padded batch and
requires a max absolute logit difference <= ``tolerance``; it also checks that the
shipped ``tokenizer.json`` produces the same ids as the checkpoint's tokenizer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.inference.registry import position_limit_of
from shared.labels import LABELS
from shared.training.modeling import load_checkpoint, logits_of

if TYPE_CHECKING:
    import torch

OPSET = 17
PARITY_TOLERANCE = 1e-4
INPUT_NAMES = ("input_ids", "attention_mask")
PARITY_TEXTS: tuple[str, ...] = (
    "Shares surge after record profits",
    "Bank of England holds interest rates",
    "i lost my card!!! pls help",
    "",
    "🙂🙂🙂",
    "Какой у меня баланс?",
    "FTSE 100 slumps as oil price crashes amid fears of a global recession " * 12,
    "hi",
)


class ExportError(RuntimeError):
    """Export failed or the exported graph does not match PyTorch."""


class CheckpointError(ExportError):
    """The folder given as a checkpoint is not a usable one (invalid input, not a failure)."""


WEIGHT_FILES = (  # in the order transformers looks for them
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "spm.model",
)
VOCAB_SLACK = 0.01
"""A checkpoint's embedding matrix may be padded past the tokenizer's vocabulary by this fraction."""


def check_checkpoint_folder(path: Path) -> dict[str, Any]:
    """Refuse what is not a local checkpoint folder before transformers sees it (it would
    take a missing path for a Hub id); return its ``config.json``.

    :class:`FileNotFoundError` for a path that does not exist, :class:`CheckpointError`
    for a folder without ``config.json``, weights or tokenizer files.
    """
    import json

    if not path.exists():
        raise FileNotFoundError(f"checkpoint folder {path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint folder")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} is not a checkpoint folder: no config.json")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path / 'config.json'} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{path / 'config.json'}: expected a JSON object")
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        raise CheckpointError(f"{path} has no model weights (one of {', '.join(WEIGHT_FILES)})")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise CheckpointError(
            f"{path} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}); save the tokenizer "
            "with the checkpoint (tokenizer.save_pretrained) or copy the base model's"
        )
    return config


def _read_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors in one weight file: a safetensors header, or a
    PyTorch pickle loaded onto the meta device (no data). :class:`CheckpointError` when the
    file cannot be read (truncated, corrupt, not a weight file)."""
    import pickle

    try:
        if file.suffix == ".safetensors":
            from safetensors import SafetensorError, safe_open

            try:
                with safe_open(str(file), framework="pt") as st:
                    return {k: tuple(st.get_slice(k).get_shape()) for k in st.keys()}
            except SafetensorError as exc:
                raise ValueError(str(exc)) from exc
        import torch

        state = torch.load(str(file), map_location="meta", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"expected a state dict, found a {type(state).__name__}")
        return {str(k): tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].split(". ")[0]
        raise CheckpointError(
            f"{file} cannot be read ({reason}): is it truncated or corrupt? Save or copy the checkpoint again"
        ) from exc


def weight_shapes(path: Path) -> tuple[str, dict[str, tuple[int, ...]]]:
    """(weight file name(s), shape of each tensor) of the checkpoint in ``path``, from the
    file transformers would load (``model.safetensors`` first, then a sharded index, then
    ``pytorch_model.bin``), without loading any weights."""
    import json

    for name in WEIGHT_FILES:
        file = path / name
        if not file.is_file():
            continue
        if not name.endswith(".index.json"):
            return name, _read_shapes(file)
        try:
            weight_map = json.loads(file.read_text(encoding="utf-8"))["weight_map"]
            shards = sorted({str(v) for v in weight_map.values()})
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{file} is not a valid weight index (no weight_map): {exc}") from exc
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            raise CheckpointError(f"{path}: weight shards {', '.join(missing)} listed in {name} are missing")
        shapes: dict[str, tuple[int, ...]] = {}
        for shard in shards:
            shapes.update(_read_shapes(path / shard))
        return name, shapes
    raise CheckpointError(f"{path} has no model weights (one of {', '.join(WEIGHT_FILES)})")


def _dims(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def check_weight_shapes(path: Path) -> None:
    """Refuse a checkpoint whose weights do not fit its ``config.json`` before transformers
    loads it (it fails with a size-mismatch report): above all a config declaring another
    label count than the classifier head's weights have rows (edited by hand, or copied
    from another checkpoint). Also refuses weight files that cannot be read. Only tensors
    the model and the file name alike are compared (missing weights are
    :func:`~shared.training.modeling.check_no_missing_weights`' concern)."""
    import json

    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    from shared.training.modeling import HEAD_JSON, HEAD_WEIGHTS

    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    head_json = path / HEAD_JSON
    if head_json.is_file():  # our mean-pooling head: the encoder, then the head
        try:
            head_labels = [str(n) for n in json.loads(head_json.read_text(encoding="utf-8"))["labels"]]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{head_json} is not valid (a JSON object with labels): {exc}") from exc
        if not (path / HEAD_WEIGHTS).is_file():
            raise CheckpointError(f"{path} has {HEAD_JSON} but no {HEAD_WEIGHTS} (the classification head's weights)")
        rows = _read_shapes(path / HEAD_WEIGHTS).get("weight")
        if rows is None or rows[0] != len(head_labels):
            raise CheckpointError(
                f"{path}: {HEAD_JSON} declares {len(head_labels)} labels ({', '.join(head_labels)}) but the "
                f"classification head's weight in {HEAD_WEIGHTS} has shape {_dims(rows or ())}; "
                f"the two files do not belong together"
            )
        with torch.device("meta"):
            model = AutoModel.from_config(config)
        prefix = None
    else:
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(config)
        prefix = str(model.base_model_prefix)
    source, found = weight_shapes(path)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    wrong = sorted(
        (k for k in expected if k in found and found[k] != expected[k]), key=lambda k: not k.endswith("weight")
    )
    if not wrong:
        return
    n = int(config.num_labels)
    head = [
        k
        for k in wrong
        if prefix is not None and not k.startswith(f"{prefix}.") and expected[k][:1] == (n,) != found[k][:1]
    ]
    if head:
        key = head[0]
        names = ", ".join(str(config.id2label[i]) for i in sorted(config.id2label))
        raise CheckpointError(
            f"{path}: config.json declares {n} labels ({names}) but the classifier head's weights are for "
            f"{found[key][0] if found[key] else 0} ({key} has shape {_dims(found[key])} in {source}, "
            f"{_dims(expected[key])} expected); config.json does not belong to these weights: was it edited or "
            "copied from another checkpoint?"
        )
    shown = ", ".join(f"{k} {_dims(found[k])} (config: {_dims(expected[k])})" for k in wrong[:3])
    more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
    raise CheckpointError(
        f"{path}: the weights in {source} do not fit config.json: {shown}{more}; config.json does not belong "
        "to these weights: was it edited or copied from another checkpoint?"
    )


def check_tokenizer_vocab(path: Path, tok: Any, config: dict[str, Any]) -> None:
    """Refuse a tokenizer whose vocabulary does not fit the model's embeddings: more ids
    than ``config.vocab_size``, or far fewer (another model's, or an empty one)."""
    vocab_size = config.get("vocab_size")
    if not isinstance(vocab_size, int) or vocab_size <= 0:
        return
    n = len(tok)
    if n > vocab_size or n < vocab_size * (1 - VOCAB_SLACK):
        raise CheckpointError(
            f"{path}: the tokenizer's vocabulary ({n} tokens) does not match the model's "
            f"config.vocab_size ({vocab_size}); is it the checkpoint's own tokenizer?"
        )


@dataclass(frozen=True)
class ParityReport:
    """Result of comparing ONNX Runtime with PyTorch."""

    max_abs_diff: float
    tolerance: float
    n_texts: int
    tokenizer_match: bool
    label_order: dict[str, Any] = field(default_factory=dict)
    """The checkpoint's label names in logit order, where they come from, and the logit
    index taken for each label of the task (recorded in the card)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "max_abs_logit_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "n_texts": self.n_texts,
            "tokenizer_json_matches": self.tokenizer_match,
        }


def _unnamed(names: Sequence[str]) -> bool:
    return all(n.startswith("label_") for n in names)


def label_permutation(id2label: dict[int, str], task: str, given: Sequence[str] | None = None) -> list[int]:
    """Checkpoint logit index for each label of the task's fixed order. Names compare
    without case and surrounding blanks. ``given`` (``--labels``) names the checkpoint's
    logits, in logit order, with the task's labels: needed when the checkpoint does not
    name them (``LABEL_0``...), and renaming names of its own that are not the task's
    (``neg``, ``neu``, ``pos``) index by index; it must agree with any of the task's
    names the checkpoint has. All refusals are :class:`CheckpointError` (invalid input)."""
    labels = LABELS[task]
    names = {i: str(n).strip().lower() for i, n in id2label.items()}
    if len(names) != len(labels):
        own = ", ".join(str(id2label[i]) for i in sorted(id2label))
        raise CheckpointError(
            f"checkpoint has {len(names)} labels ({own}), task {task} needs {len(labels)} "
            f"({', '.join(labels)}); is it a base model or another task's classifier rather than "
            f"a fine-tuned {task} classifier?"
        )
    order = [names[i] for i in sorted(names)]
    if given is not None:
        wanted = [str(n).strip().lower() for n in given]
        if sorted(wanted) != sorted(labels):
            raise CheckpointError(
                f"--labels {','.join(given)}: expected each {task} label once ({','.join(labels)}), "
                "in the checkpoint's logit order"
            )
        if any(own in labels and own != new for own, new in zip(order, wanted, strict=True)):
            raise CheckpointError(f"--labels {','.join(given)} disagrees with the checkpoint's own labels {order}")
        order = wanted
    elif _unnamed(order):
        raise CheckpointError(
            f"the checkpoint does not name its labels ({', '.join(str(id2label[i]) for i in sorted(id2label))}): "
            "give them in its logit order "
            f"with --labels (the {task} labels: {','.join(labels)}); no order is assumed"
        )
    if sorted(order) == sorted(labels):
        return [order.index(lab) for lab in labels]
    raise CheckpointError(
        f"checkpoint labels {order} do not match {list(labels)}: give the {task} label of each, in the "
        "checkpoint's logit order, with --labels"
    )


def _wrapper(model: Any, perm: list[int]) -> torch.nn.Module:
    import torch

    class Logits(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("perm", torch.tensor(perm, dtype=torch.long))

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
            return logits_of(out).index_select(-1, self.perm)

    return Logits().eval()


def write_tokenizer(checkpoint: Path, dest: Path, max_length: int) -> None:
    """Save the checkpoint's fast tokenizer as ``tokenizer.json`` with truncation."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
    backend = tok.backend_tokenizer
    backend.enable_truncation(max_length=max_length)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    backend.enable_padding(pad_id=pad_id, pad_token=tok.pad_token or "[PAD]")
    backend.save(str(dest))


def export_onnx(
    checkpoint: Path,
    dest: Path,
    task: str,
    max_length: int,
    *,
    tokenizer_dest: Path | None = None,
    texts: Sequence[str] = PARITY_TEXTS,
    tolerance: float = PARITY_TOLERANCE,
    labels: Sequence[str] | None = None,
) -> ParityReport:
    """Export ``checkpoint`` to ``dest`` (fp32 ONNX) and check parity; ``labels``: the
    checkpoint's label names in logit order (see :func:`label_permutation`)."""
    import torch
    from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    config = check_checkpoint_folder(checkpoint)
    try:
        check_weight_shapes(checkpoint)
        tok = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
        model, names = load_checkpoint(checkpoint, eager=True)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{checkpoint}: cannot load the checkpoint: {str(exc).splitlines()[0]}") from exc
    check_tokenizer_vocab(checkpoint, tok, config)
    limit = position_limit_of(config)
    if limit is not None and max_length > limit:
        raise CheckpointError(f"max_length {max_length} exceeds the model's position limit of {limit} tokens")
    perm = label_permutation(dict(enumerate(names or [])), task, labels)
    label_order: dict[str, Any] = {
        "checkpoint_labels": list(labels) if labels is not None else list(names or []),
        "source": "--labels" if labels is not None else "checkpoint",
        "logit_index": dict(zip(LABELS[task], perm, strict=True)),
    }
    own = [str(n).strip().lower() for n in names or []]
    if labels is not None and not _unnamed(own) and own != [str(n).strip().lower() for n in labels]:
        label_order["renamed_from"] = list(names or [])  # the checkpoint's own names, renamed by --labels
    wrapped = _wrapper(model, perm)
    enc = tok(
        list(texts),
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )
    args = (enc["input_ids"].long(), enc["attention_mask"].long())
    dest.parent.mkdir(parents=True, exist_ok=True)
    axes = {"batch": 0, "sequence": 1}
    dyn = {n: {v: k for k, v in axes.items()} for n in INPUT_NAMES}
    with torch.inference_mode():
        torch.onnx.export(
            wrapped,
            args,
            str(dest),
            input_names=list(INPUT_NAMES),
            output_names=["logits"],
            dynamic_axes={**dyn, "logits": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    tok_dest = tokenizer_dest or dest.parent / "tokenizer.json"
    write_tokenizer(checkpoint, tok_dest, max_length)
    tok_ok = tokenizer_matches(tok_dest, texts, args[0].numpy())
    # several batch sizes and sequence lengths: the axes must really be dynamic
    worst = 0.0
    for group in (list(texts), list(texts[:1]), list(texts[1:4])):
        g = tok(group, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        ids, mask = g["input_ids"].long(), g["attention_mask"].long()
        with torch.inference_mode():
            expected = wrapped(ids, mask).float().numpy()
        part = check_parity(dest, ids.numpy(), mask.numpy(), expected, tolerance)
        worst = max(worst, part.max_abs_diff)
    report = ParityReport(worst, tolerance, len(texts), tok_ok, label_order)
    if not tok_ok:
        raise ExportError(f"{tok_dest} does not reproduce the checkpoint's token ids")
    return report


def tokenizer_matches(tokenizer_json: Path, texts: Sequence[str], expected_ids: np.ndarray[Any, Any]) -> bool:
    """Whether ``tokenizer.json`` (``tokenizers``) gives the same padded ids."""
    from tokenizers import Tokenizer

    tk = Tokenizer.from_file(str(tokenizer_json))
    ids = np.array([e.ids for e in tk.encode_batch(list(texts))], dtype=np.int64)
    return ids.shape == expected_ids.shape and bool((ids == expected_ids).all())


def check_parity(
    onnx_path: Path,
    input_ids: np.ndarray[Any, Any],
    attention_mask: np.ndarray[Any, Any],
    expected: np.ndarray[Any, Any],
    tolerance: float = PARITY_TOLERANCE,
) -> ParityReport:
    """Run ``onnx_path`` on CPU and compare its logits with ``expected``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {
        "input_ids": input_ids.astype(np.int64),
        "attention_mask": attention_mask.astype(np.int64),
    }
    got = np.asarray(sess.run(["logits"], feeds)[0], dtype=np.float32)
    diff = float(np.abs(got - expected).max())
    if not diff <= tolerance:
        raise ExportError(f"ONNX parity failed for {onnx_path}: max |logit diff| {diff:.3g} > {tolerance}")
    return ParityReport(diff, tolerance, int(input_ids.shape[0]), True)
