"""Inference settings, embedded by every service that classifies text.

A plain frozen pydantic model (not a ``BaseSettings``): each service nests it in
its own settings class, so ``TW_CLASSIFIER__INFERENCE__DEVICE=cuda`` style
variables reach it through the service's environment prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Device = Literal["auto", "cuda", "tensorrt", "cpu"]
Variant = Literal["auto", "int8", "fp16", "fp32"]

CPU_BUCKET_ROWS = 16
"""Default rows per ONNX run on CPU: small runs keep padding low (measured best
throughput with max_batch 128-512 on the 2-core benchmark machine)."""


_MICROBATCHER_ONLY = (
    " MicroBatcher only (library callers, bench/inference.py); the classifier service classifies whole"
    " Kafka batches (TW_CLASSIFIER_BATCH_MAX, TW_CLASSIFIER_CONCURRENT_BATCHES)."
)


class InferenceSettings(BaseModel):
    """How a model is run: device, precision, batching and threads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: Device = Field(
        default="auto",
        description=(
            "Execution device. 'auto' tries TensorRT, then CUDA, then CPU (CPU with a "
            "warning). 'cuda' or 'tensorrt' fail at start-up when they cannot be used."
        ),
    )
    device_id: int = Field(default=0, ge=0, description="GPU ordinal for cuda/tensorrt.")
    variant: Variant = Field(
        default="auto",
        description=(
            "Model precision. 'auto': fp16 on CUDA, fp32 on TensorRT (which builds its "
            "own fp16 engine), int8 on CPU; falls back to fp32 when absent."
        ),
    )
    max_batch: int = Field(
        default=64,
        ge=1,
        le=65_536,
        description="Most texts in one micro-batch." + _MICROBATCHER_ONLY,
    )
    max_wait_ms: float = Field(
        default=10.0,
        ge=0.0,
        description="Longest a text waits for its micro-batch to fill." + _MICROBATCHER_ONLY,
    )
    max_length: int | None = Field(
        default=None,
        ge=2,
        le=4096,
        description=(
            "Token truncation length; None takes the model card's max_length. A model refuses to "
            "load when it exceeds its position limit (512 for MiniLM)."
        ),
    )
    intra_op_threads: int | None = Field(
        default=None,
        ge=1,
        description=(
            "ONNX Runtime intra-op threads; None = physical cores available to this "
            "process (divided by parallel_buckets). Lower it when several services share "
            "one machine."
        ),
    )
    inter_op_threads: int = Field(default=1, ge=1, description="Inter-op threads.")
    parallel_buckets: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "CPU only: length buckets run at once, each on its own thread (throughput mode). "
            "With N > 1, intra_op_threads defaults to physical cores / N."
        ),
    )
    allow_spinning: bool = Field(
        default=False,
        description=(
            "Let idle ORT worker threads spin-wait. Off by default: in a service the "
            "event loop, the Kafka client and other processes need those cycles (the "
            "pipeline benchmark ran about 20% faster with it off). On is about 6% faster "
            "for the model alone on a dedicated machine."
        ),
    )
    executor_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Threads running inference off the event loop (batches in flight)." + _MICROBATCHER_ONLY,
    )
    max_pending: int = Field(
        default=1024,
        ge=1,
        description="Texts queued for batching before callers wait (backpressure)." + _MICROBATCHER_ONLY,
    )
    length_bucket_size: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Rows per ONNX run after sorting a batch by token length; each run is "
            "padded to its own longest row. None: 16 on CPU, max_batch on GPU."
        ),
    )
    cuda_graphs: bool = Field(
        default=False,
        description=(
            "CUDA provider only: capture CUDA graphs, one per padded shape (rows are "
            "padded to length_bucket_size, lengths to a multiple of 16)."
        ),
    )
    io_binding: bool = Field(default=True, description="GPU only: run through ORT I/O binding.")
    trt_cache_dir: Path | None = Field(
        default=None,
        description="TensorRT engine cache folder; None = <model folder>/.trt-cache.",
    )

    def bucket_rows(self, on_gpu: bool) -> int:
        """Rows per ONNX run for the active device."""
        if self.length_bucket_size is not None:
            return self.length_bucket_size
        return self.max_batch if on_gpu else min(CPU_BUCKET_ROWS, self.max_batch)
