"""The classifier splits the cores between its concurrent batches."""

from __future__ import annotations

import pytest

from services.classifier import config
from services.classifier.config import ClassifierSettings
from shared.inference.settings import InferenceSettings


def test_concurrent_batches_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "physical_cores", lambda: 8)
    assert ClassifierSettings(concurrent_batches=2).model_settings().intra_op_threads == 4
    assert ClassifierSettings(concurrent_batches=1).model_settings().intra_op_threads == 8
    assert ClassifierSettings(concurrent_batches=16).model_settings().intra_op_threads == 1


def test_explicit_thread_count_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "physical_cores", lambda: 8)
    s = ClassifierSettings(concurrent_batches=2, inference=InferenceSettings(intra_op_threads=3))
    assert s.model_settings().intra_op_threads == 3
    assert s.model_settings().device == s.inference.device  # everything else carried over


def test_buckets_of_all_batches_share_one_worker_per_run_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "physical_cores", lambda: 2)
    s = ClassifierSettings(concurrent_batches=2).model_settings()
    assert (s.intra_op_threads, s.parallel_buckets) == (1, 2)
    monkeypatch.setattr(config, "physical_cores", lambda: 8)
    s = ClassifierSettings(concurrent_batches=2).model_settings()
    assert (s.intra_op_threads, s.parallel_buckets) == (4, 2)
    s = ClassifierSettings(concurrent_batches=1).model_settings()
    assert (s.intra_op_threads, s.parallel_buckets) == (8, 1)
    s = ClassifierSettings(concurrent_batches=2, inference=InferenceSettings(intra_op_threads=1)).model_settings()
    assert s.parallel_buckets == 8


def test_explicit_parallel_buckets_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "physical_cores", lambda: 2)
    monkeypatch.setenv("TW_INFERENCE__PARALLEL_BUCKETS", "1")
    s = ClassifierSettings(concurrent_batches=2).model_settings()
    assert (s.intra_op_threads, s.parallel_buckets) == (1, 1)
