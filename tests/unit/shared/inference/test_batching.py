"""Length bucketing: order restore, padding, efficiency math."""

from __future__ import annotations

import numpy as np
import pytest

from shared.inference.batching import (
    PaddingStats,
    computed_tokens,
    pad_bucket,
    padding_efficiency,
    plan_buckets,
    scatter,
)


def lengths(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_buckets_sorted_by_length_and_bounded() -> None:
    lens = lengths(5, 1, 9, 3, 3, 7, 2)
    buckets = plan_buckets(lens, rows_per_bucket=3)
    assert [len(b.rows) for b in buckets] == [3, 3, 1]
    flat = np.concatenate([b.rows for b in buckets])
    assert sorted(flat.tolist()) == list(range(7))
    assert lens[flat].tolist() == sorted(lens.tolist())
    assert [b.width for b in buckets] == [3, 7, 9]


def test_stable_sort_keeps_equal_lengths_in_input_order() -> None:
    buckets = plan_buckets(lengths(4, 4, 4, 4), rows_per_bucket=10)
    assert buckets[0].rows.tolist() == [0, 1, 2, 3]


def test_width_multiple_rounds_up() -> None:
    buckets = plan_buckets(lengths(1, 17, 33), rows_per_bucket=1, width_multiple=16)
    assert [b.width for b in buckets] == [16, 32, 48]


def test_empty_batch_has_no_buckets() -> None:
    assert plan_buckets(lengths(), rows_per_bucket=4) == []
    assert scatter(0, [], []).shape == (0, 0)


@pytest.mark.parametrize("rows", [0, -1])
def test_bad_bucket_size(rows: int) -> None:
    with pytest.raises(ValueError, match="rows_per_bucket"):
        plan_buckets(lengths(1), rows_per_bucket=rows)


def test_scatter_restores_input_order() -> None:
    rng = np.random.default_rng(0)
    lens = rng.integers(1, 40, size=50).astype(np.int64)
    buckets = plan_buckets(lens, rows_per_bucket=8)
    # a fake model whose output for a row is its length: the round trip must line up
    outputs = [np.stack([lens[b.rows], -lens[b.rows]], axis=1).astype(np.float32) for b in buckets]
    out = scatter(len(lens), buckets, outputs)
    assert out[:, 0].tolist() == lens.tolist()
    assert out[:, 1].tolist() == (-lens).tolist()


def test_scatter_ignores_dummy_rows() -> None:
    buckets = plan_buckets(lengths(2, 1), rows_per_bucket=4)
    padded_out = np.array([[1.0], [2.0], [99.0], [99.0]], dtype=np.float32)  # 2 real + 2 dummy
    out = scatter(2, buckets, [padded_out])
    assert out[:, 0].tolist() == [2.0, 1.0]  # row 1 (len 1) sorted first


def test_pad_bucket_pads_to_bucket_width() -> None:
    ids = [np.array([101, 7, 102]), np.array([101, 102]), np.array([101, 5, 6, 7, 102])]
    types = [np.zeros(len(x), dtype=np.int64) for x in ids]
    (bucket,) = plan_buckets(lengths(3, 2, 5), rows_per_bucket=3)
    p = pad_bucket(ids, types, bucket, pad_id=0)
    assert p.input_ids.tolist() == [[101, 102, 0, 0, 0], [101, 7, 102, 0, 0], [101, 5, 6, 7, 102]]
    assert p.attention_mask.sum(axis=1).tolist() == [2, 3, 5]
    assert p.token_type_ids.shape == p.input_ids.shape
    assert p.n_real_rows == 3


def test_pad_bucket_dummy_rows_are_never_fully_masked() -> None:
    ids = [np.array([1, 2])]
    (bucket,) = plan_buckets(lengths(2), rows_per_bucket=1, width_multiple=4)
    p = pad_bucket(ids, [np.zeros(2, dtype=np.int64)], bucket, pad_id=0, rows_to=3)
    assert p.input_ids.shape == (3, 4)
    assert p.attention_mask.tolist() == [[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]
    assert p.n_real_rows == 1


def test_padding_efficiency_math() -> None:
    lens = lengths(2, 4, 4, 8)
    one_bucket = plan_buckets(lens, rows_per_bucket=4)
    assert computed_tokens(one_bucket) == 4 * 8
    assert padding_efficiency(int(lens.sum()), computed_tokens(one_bucket)) == pytest.approx(18 / 32)
    small = plan_buckets(lens, rows_per_bucket=2)  # [2,4] -> 2x4, [4,8] -> 2x8
    assert computed_tokens(small) == 8 + 16
    assert padding_efficiency(18, computed_tokens(small)) == pytest.approx(18 / 24)
    assert computed_tokens(small, rows_to=3) == 3 * 4 + 3 * 8
    assert padding_efficiency(0, 0) == 1.0


def test_sorting_beats_arrival_order_padding() -> None:
    rng = np.random.default_rng(1)
    lens = rng.integers(5, 40, size=256).astype(np.int64)
    bucketed = computed_tokens(plan_buckets(lens, rows_per_bucket=32))
    arrival = sum(int(lens[i : i + 32].max()) * len(lens[i : i + 32]) for i in range(0, 256, 32))
    assert bucketed < arrival
    assert padding_efficiency(int(lens.sum()), bucketed) > 0.9


def test_padding_stats_accumulate() -> None:
    stats = PaddingStats()
    assert stats.efficiency == 1.0
    stats.add(10, 20)
    stats.add(30, 40)
    assert (stats.real, stats.computed) == (40, 60)
    assert stats.efficiency == pytest.approx(40 / 60)
