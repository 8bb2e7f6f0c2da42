"""Provider selection with faked provider lists: no GPU needed."""

from __future__ import annotations

import logging

import pytest

from shared.inference.device import (
    DevicePlan,
    DeviceUnavailableError,
    Kind,
    check_active,
    diagnose_provider,
    explain,
    physical_cores,
    plan_device,
    warn_cpu_fallback,
)

CPU_ONLY = ["AzureExecutionProvider", "CPUExecutionProvider"]
GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def loads_fine(kind: Kind) -> str | None:
    return None


def cudnn_missing(kind: Kind) -> str | None:
    return f"{kind} failed to load: libcudnn.so.9: cannot open shared object file"


def test_auto_prefers_tensorrt_then_cuda_then_cpu() -> None:
    plan = plan_device("auto", GPU_BUILD)
    assert plan.candidates == ("tensorrt", "cuda", "cpu")
    assert plan.skipped == ()


def test_auto_on_cpu_only_build_picks_cpu_and_says_why() -> None:
    plan = plan_device("auto", CPU_ONLY)
    assert plan.candidates == ("cpu",)
    assert len(plan.skipped) == 2
    assert all("onnxruntime-gpu not installed" in s for s in plan.skipped)


def test_auto_with_cuda_only_build() -> None:
    plan = plan_device("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert plan.candidates == ("cuda", "cpu")
    assert "TensorrtExecutionProvider" in plan.skipped[0]


def test_cpu_request_never_plans_gpu() -> None:
    assert plan_device("cpu", GPU_BUILD).candidates == ("cpu",)


@pytest.mark.parametrize(("device", "provider"), [("cuda", "CUDAExecutionProvider"), ("tensorrt", "Tensorrt")])
def test_gpu_request_on_cpu_only_build_fails_clearly(device: str, provider: str) -> None:
    with pytest.raises(DeviceUnavailableError) as err:
        plan_device(device, CPU_ONLY)
    message = str(err.value)
    assert f"device={device!r}" in message
    assert provider in message
    assert "onnxruntime-gpu not installed" in message


def test_silent_fallback_error_names_the_missing_library() -> None:
    with pytest.raises(DeviceUnavailableError, match=r"libcudnn\.so\.9"):
        check_active("cuda", ["CPUExecutionProvider"], cudnn_missing)


def test_explain_adds_the_loader_reason_only_when_there_is_one() -> None:
    assert explain("cuda", "session failed", loads_fine) == "session failed"
    assert "libcudnn.so.9" in explain("cuda", "session failed", cudnn_missing)


def test_cuda_request_when_built_in_plans_cuda_only() -> None:
    assert plan_device("cuda", GPU_BUILD) == DevicePlan("cuda", ("cuda",))


def test_unknown_device_rejected() -> None:
    with pytest.raises(ValueError, match="unknown device"):
        plan_device("tpu", CPU_ONLY)


def test_check_active_catches_silent_fallback() -> None:
    check_active("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"], loads_fine)
    check_active("cpu", ["CPUExecutionProvider"], loads_fine)
    with pytest.raises(DeviceUnavailableError, match="fell back silently"):
        check_active("cuda", ["CPUExecutionProvider"], loads_fine)
    with pytest.raises(DeviceUnavailableError):
        check_active("tensorrt", ["CUDAExecutionProvider", "CPUExecutionProvider"], loads_fine)


def test_auto_fallback_warns(caplog: pytest.LogCaptureFixture) -> None:
    plan = plan_device("auto", CPU_ONLY)
    with caplog.at_level(logging.WARNING, logger="shared.inference.device"):
        warn_cpu_fallback(plan, [])
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "fell back to CPU" in record.getMessage()
    assert "onnxruntime-gpu not installed" in record.getMessage()


def test_diagnose_cpu_is_always_fine() -> None:
    assert diagnose_provider("cpu") is None


def test_diagnose_real_gpu_provider_returns_reason_or_none() -> None:
    import onnxruntime

    reason = diagnose_provider("cuda")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert reason is not None and "onnxruntime-gpu not installed" in reason


def test_physical_cores_is_sane() -> None:
    import os

    assert 1 <= physical_cores() <= (os.cpu_count() or 1)
