"""Graph optimization and quantization of an exported fp32 ONNX model.

1. ONNX Runtime transformer optimizer (``model_type="bert"``): fuses embeddings,
   attention, bias-GELU and skip-layer-norm into contrib ops (CPU and CUDA).
2. int8: ``quantize_dynamic`` (QInt8 weights, per-channel) of the optimized graph,
   for CPU. Embedding tables are quantized too, which keeps the file under 25 MB.
3. fp16: ``convert_float_to_float16(keep_io_types=True)`` of the optimized graph,
   for GPU; inputs stay int64 and logits stay float32.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

MAX_INT8_BYTES = 25 * 1000 * 1000


class OptimizeError(RuntimeError):
    """Optimization or quantization failed or produced an unusable file."""


def encoder_shape(checkpoint: Path | None) -> tuple[int, int]:
    """(num_heads, hidden_size) from a checkpoint's config.json; (0, 0) = detect."""
    cfg_path = checkpoint / "config.json" if checkpoint else None
    if cfg_path is None or not cfg_path.is_file():
        return 0, 0
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    heads = cfg.get("num_attention_heads") or cfg.get("n_heads") or 0
    hidden = cfg.get("hidden_size") or cfg.get("dim") or 0
    return int(heads), int(hidden)


def optimize_graph(src: Path, dst: Path, *, num_heads: int = 0, hidden_size: int = 0) -> dict[str, int]:
    """Write the fused fp32 graph to ``dst``; return non-zero fusion counts."""
    from onnxruntime.transformers.optimizer import (
        optimize_model,
    )

    model = optimize_model(
        str(src),
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden_size,
        opt_level=0,
    )
    model.save_model_to_file(str(dst))
    stats = model.get_fused_operator_statistics()
    return {k: int(v) for k, v in stats.items() if v}


def quantize_int8(src: Path, dst: Path, *, per_channel: bool = True) -> None:
    """Dynamic int8 quantization (QInt8 weights) of ``src`` into ``dst``."""
    import onnx
    from onnxruntime.quantization import (
        QuantType,
        quantize_dynamic,
    )

    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    size = dst.stat().st_size
    if size > MAX_INT8_BYTES:
        raise OptimizeError(f"{dst} is {size} bytes, over the {MAX_INT8_BYTES} limit")


def to_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and activations, fp32/int64 inputs and outputs."""
    import onnx
    from onnxruntime.transformers.onnx_model import (
        OnnxModel,
    )

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(dst))


def build_variants(
    fp32: Path,
    out_dir: Path,
    *,
    checkpoint: Path | None = None,
    per_channel: bool = True,
    fp16: bool = True,
) -> dict[str, Any]:
    """Create ``model.int8.onnx`` (and ``model.fp16.onnx``) next to ``fp32``."""
    heads, hidden = encoder_shape(checkpoint)
    info: dict[str, Any] = {
        "optimizer": "onnxruntime.transformers.optimizer (model_type=bert)",
        "int8": {
            "method": "quantize_dynamic",
            "weight_type": "QInt8",
            "per_channel": per_channel,
        },
    }
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        opt = Path(tmp) / "model.opt.onnx"
        info["fusions"] = optimize_graph(fp32, opt, num_heads=heads, hidden_size=hidden)
        quantize_int8(opt, out_dir / "model.int8.onnx", per_channel=per_channel)
        if fp16:
            to_fp16(opt, out_dir / "model.fp16.onnx")
            info["fp16"] = {"method": "convert_float_to_float16", "keep_io_types": True}
    info["sizes"] = {p.name: p.stat().st_size for p in sorted(out_dir.glob("model.*.onnx"))}
    return info
