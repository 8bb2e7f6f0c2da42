"""Length bucketing: sort a batch by token length, run it in small buckets each
padded to its own longest row, and put the outputs back in input order.

Padding efficiency = real tokens / computed tokens (1.0 means no padding).
Pure numpy; no model in here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Bucket:
    """Rows (indices into the batch, shortest first) run together at one width."""

    rows: IntArray
    width: int


@dataclass(frozen=True)
class Padded:
    """Model inputs for one bucket (``rows_to`` may add dummy rows at the end)."""

    input_ids: IntArray
    attention_mask: IntArray
    token_type_ids: IntArray
    n_real_rows: int


def plan_buckets(lengths: IntArray, rows_per_bucket: int, width_multiple: int = 1) -> list[Bucket]:
    """Sort rows by length (stable) and cut them into buckets of at most
    ``rows_per_bucket`` rows; each bucket's width is its longest row, rounded up to
    ``width_multiple`` (CUDA graphs want a few fixed shapes)."""
    if rows_per_bucket < 1:
        raise ValueError("rows_per_bucket must be >= 1")
    if width_multiple < 1:
        raise ValueError("width_multiple must be >= 1")
    order = np.argsort(lengths, kind="stable").astype(np.int64)
    buckets: list[Bucket] = []
    for start in range(0, len(order), rows_per_bucket):
        rows = order[start : start + rows_per_bucket]
        longest = int(lengths[rows[-1]])
        width = -(-longest // width_multiple) * width_multiple
        buckets.append(Bucket(rows, max(width, 1)))
    return buckets


def pad_bucket(
    ids: Sequence[IntArray],
    type_ids: Sequence[IntArray] | None,
    bucket: Bucket,
    pad_id: int,
    rows_to: int | None = None,
) -> Padded:
    """Right-pad the bucket's rows to its width. ``rows_to`` appends dummy rows
    (one unmasked pad token each, so no row is fully masked) up to a fixed count.
    ``type_ids=None`` leaves token types at zero."""
    n = len(bucket.rows)
    total = max(n, rows_to or 0)
    input_ids = np.full((total, bucket.width), pad_id, dtype=np.int64)
    mask = np.zeros((total, bucket.width), dtype=np.int64)
    types = np.zeros((total, bucket.width), dtype=np.int64)
    for r, i in enumerate(bucket.rows.tolist()):
        row = ids[i]
        k = min(len(row), bucket.width)
        input_ids[r, :k] = row[:k]
        mask[r, :k] = 1
        if type_ids is not None:
            types[r, :k] = type_ids[i][:k]
    mask[n:, 0] = 1
    return Padded(input_ids, mask, types, n)


def scatter(n_rows: int, buckets: Sequence[Bucket], outputs: Sequence[FloatArray]) -> FloatArray:
    """Bucket outputs (in bucket row order) back into one array in input order."""
    if not outputs:
        return np.zeros((n_rows, 0), dtype=np.float32)
    result = np.empty((n_rows, outputs[0].shape[-1]), dtype=np.float32)
    for bucket, out in zip(buckets, outputs, strict=True):
        result[bucket.rows] = out[: len(bucket.rows)]
    return result


def computed_tokens(buckets: Sequence[Bucket], rows_to: int | None = None) -> int:
    """Tokens the model computes for these buckets (rows x width, dummy rows too)."""
    return sum(max(len(b.rows), rows_to or 0) * b.width for b in buckets)


def padding_efficiency(real: int, computed: int) -> float:
    """real / computed tokens; 1.0 for an empty batch."""
    if computed <= 0:
        return 1.0
    return real / computed


class PaddingStats:
    """Running real/computed token totals (thread safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.real = 0
        self.computed = 0

    def add(self, real: int, computed: int) -> None:
        """Count one batch."""
        with self._lock:
            self.real += real
            self.computed += computed

    @property
    def efficiency(self) -> float:
        """Cumulative padding efficiency."""
        return padding_efficiency(self.real, self.computed)
