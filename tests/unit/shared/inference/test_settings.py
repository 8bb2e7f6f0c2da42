"""InferenceSettings: frozen, validated, embeddable in service settings."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.inference.engine import choose_variant, softmax
from shared.inference.registry import RegistryError
from shared.inference.settings import InferenceSettings


def test_defaults() -> None:
    s = InferenceSettings()
    assert (s.device, s.variant, s.max_batch, s.max_wait_ms) == ("auto", "auto", 64, 10.0)
    assert s.max_length is None and s.intra_op_threads is None
    assert (s.inter_op_threads, s.executor_workers, s.cuda_graphs, s.io_binding) == (1, 1, False, True)


def test_frozen_and_strict() -> None:
    s = InferenceSettings()
    with pytest.raises(ValidationError):
        s.max_batch = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        InferenceSettings(device="gpu")
    with pytest.raises(ValidationError):
        InferenceSettings(max_batch=0)
    with pytest.raises(ValidationError):
        InferenceSettings(unknown_knob=1)  # type: ignore[call-arg]


def test_bucket_rows_per_device() -> None:
    assert InferenceSettings().bucket_rows(on_gpu=False) == 16
    assert InferenceSettings(max_batch=8).bucket_rows(on_gpu=False) == 8
    assert InferenceSettings(max_batch=512).bucket_rows(on_gpu=True) == 512
    assert InferenceSettings(length_bucket_size=16).bucket_rows(on_gpu=True) == 16


def test_embeds_in_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    class Service(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="TW_TEST_", env_nested_delimiter="__", frozen=True)
        inference: InferenceSettings = InferenceSettings()

    monkeypatch.setenv("TW_TEST_INFERENCE__DEVICE", "cuda")
    monkeypatch.setenv("TW_TEST_INFERENCE__MAX_BATCH", "256")
    s = Service()
    assert s.inference.device == "cuda"
    assert s.inference.max_batch == 256


def test_choose_variant() -> None:
    all_variants = ("fp32", "int8", "fp16")
    assert choose_variant("auto", "cpu", all_variants) == "int8"
    assert choose_variant("auto", "cuda", all_variants) == "fp16"
    assert choose_variant("auto", "tensorrt", all_variants) == "fp32"
    assert choose_variant("auto", "cuda", ("fp32", "int8")) == "fp32"
    assert choose_variant("fp32", "cpu", all_variants) == "fp32"
    with pytest.raises(RegistryError, match="no variant usable on cpu"):
        choose_variant("auto", "cpu", ("fp16",))


def test_softmax_rows_sum_to_one_and_are_stable() -> None:
    logits = np.array([[1000.0, 1000.0, -1000.0], [0.0, 1.0, 2.0]], dtype=np.float32)
    p = softmax(logits)
    assert np.isfinite(p).all()
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[0].tolist() == pytest.approx([0.5, 0.5, 0.0])
