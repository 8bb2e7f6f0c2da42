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
