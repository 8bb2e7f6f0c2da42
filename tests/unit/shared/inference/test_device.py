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


def only_cuda_loads(kind: Kind) -> str | None:
    return None if kind == "cuda" else "libnvinfer.so.10: cannot open shared object file"


def test_auto_prefers_tensorrt_then_cuda_then_cpu() -> None:
    plan = plan_device("auto", GPU_BUILD, loads_fine)
    assert plan.candidates == ("tensorrt", "cuda", "cpu")
    assert plan.skipped == ()


def test_auto_on_cpu_only_build_picks_cpu_and_says_why() -> None:
    plan = plan_device("auto", CPU_ONLY, loads_fine)
    assert plan.candidates == ("cpu",)
    assert len(plan.skipped) == 2
    assert all("onnxruntime-gpu not installed" in s for s in plan.skipped)


def test_auto_skips_provider_whose_library_cannot_load() -> None:
    plan = plan_device("auto", GPU_BUILD, only_cuda_loads)
    assert plan.candidates == ("cuda", "cpu")
    assert "libnvinfer" in plan.skipped[0]


def test_cpu_request_never_touches_gpu() -> None:
    def boom(kind: Kind) -> str | None:
        raise AssertionError("cpu must not diagnose GPU providers")

    assert plan_device("cpu", GPU_BUILD, boom).candidates == ("cpu",)


@pytest.mark.parametrize(("device", "provider"), [("cuda", "CUDAExecutionProvider"), ("tensorrt", "Tensorrt")])
def test_gpu_request_on_cpu_only_build_fails_clearly(device: str, provider: str) -> None:
    with pytest.raises(DeviceUnavailableError) as err:
        plan_device(device, CPU_ONLY, loads_fine)
    message = str(err.value)
    assert f"device={device!r}" in message
    assert provider in message
    assert "onnxruntime-gpu not installed" in message


def test_cuda_request_with_missing_cudnn_names_the_library() -> None:
    with pytest.raises(DeviceUnavailableError, match=r"libcudnn\.so\.9"):
        plan_device("cuda", GPU_BUILD, cudnn_missing)


def test_cuda_request_when_it_loads_plans_cuda_only() -> None:
    assert plan_device("cuda", GPU_BUILD, loads_fine) == DevicePlan("cuda", ("cuda",))


def test_unknown_device_rejected() -> None:
    with pytest.raises(ValueError, match="unknown device"):
        plan_device("tpu", CPU_ONLY, loads_fine)


def test_check_active_catches_silent_fallback() -> None:
    check_active("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    check_active("cpu", ["CPUExecutionProvider"])
    with pytest.raises(DeviceUnavailableError, match="fell back silently"):
        check_active("cuda", ["CPUExecutionProvider"])
    with pytest.raises(DeviceUnavailableError):
        check_active("tensorrt", ["CUDAExecutionProvider", "CPUExecutionProvider"])


def test_auto_fallback_warns(caplog: pytest.LogCaptureFixture) -> None:
    plan = plan_device("auto", CPU_ONLY, loads_fine)
    with caplog.at_level(logging.WARNING, logger="shared.inference.device"):
        warn_cpu_fallback(plan, [])
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "fell back to CPU" in record.getMessage()
    assert "onnxruntime-gpu not installed" in record.getMessage()


def test_diagnose_cpu_is_always_fine() -> None:
    assert diagnose_provider("cpu") is None


def test_diagnose_real_gpu_provider_returns_reason_or_none() -> None:
    reason = diagnose_provider("cuda")
    assert reason is None or "CUDAExecutionProvider" in reason


def test_physical_cores_is_sane() -> None:
    import os

    assert 1 <= physical_cores() <= (os.cpu_count() or 1)
