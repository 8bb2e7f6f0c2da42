"""Execution-provider selection: GPU first, CPU only on purpose or loudly.

ONNX Runtime silently falls back to CPU when a GPU provider cannot load. Here an
explicit ``cuda``/``tensorrt`` request that cannot be honoured is a start-up error
(:class:`DeviceUnavailableError`) naming what is missing, and ``auto`` ending on
CPU logs a warning. The pure planning logic takes the provider list and the
diagnosis function as parameters so it can be tested without a GPU.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Kind = Literal["tensorrt", "cuda", "cpu"]
PROVIDERS: dict[Kind, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
AUTO_ORDER: tuple[Kind, ...] = ("tensorrt", "cuda", "cpu")


class DeviceUnavailableError(RuntimeError):
    """The configured device cannot be used; the message says what is missing."""


@dataclass(frozen=True)
class DevicePlan:
    """Providers to try in order, and why better ones were skipped."""

    requested: str
    candidates: tuple[Kind, ...]
    skipped: tuple[str, ...] = ()


Diagnose = Callable[[Kind], "str | None"]


def _provider_library(kind: Kind) -> Path:
    import onnxruntime

    suffix = ".dll" if sys.platform == "win32" else ".so"
    prefix = "" if sys.platform == "win32" else "lib"
    return Path(onnxruntime.__file__).parent / "capi" / f"{prefix}onnxruntime_providers_{kind}{suffix}"


def diagnose_provider(kind: Kind) -> str | None:
    """Why the provider library for ``kind`` cannot load, or None when it loads.

    Loads ``libonnxruntime_providers_<kind>`` with ctypes (after the shared provider
    bridge, as ORT does): the loader's message names the missing CUDA, cuDNN or
    TensorRT library that ORT itself only logs. Used to explain failures, never to
    veto a session that ORT could create.
    """
    if kind == "cpu":
        return None
    lib = _provider_library(kind)
    if not lib.is_file():
        return f"{lib.name} not found: onnxruntime-gpu not installed (and the CPU-only onnxruntime package removed)"
    try:
        shared = lib.with_name(lib.name.replace(kind, "shared"))
        if shared.is_file():
            ctypes.CDLL(str(shared), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(lib))
    except OSError as exc:
        return f"{PROVIDERS[kind]} failed to load: {exc}"
    return None


def plan_device(requested: str, available: Sequence[str]) -> DevicePlan:
    """Providers to try for ``requested`` given ORT's ``get_available_providers()``.

    An explicit GPU request raises :class:`DeviceUnavailableError` here when this
    onnxruntime build lacks the provider; whether it really works is checked after
    the session is created (:func:`check_active`).
    """
    if requested == "cpu":
        return DevicePlan(requested, ("cpu",))
    if requested in ("cuda", "tensorrt"):
        kind: Kind = "cuda" if requested == "cuda" else "tensorrt"
        reason = _not_built_in(kind, available)
        if reason is not None:
            raise DeviceUnavailableError(f"device={requested!r} requested but {reason}")
        return DevicePlan(requested, (kind,))
    if requested != "auto":
        raise ValueError(f"unknown device {requested!r}; expected auto, cuda, tensorrt or cpu")
    chosen: list[Kind] = []
    skipped: list[str] = []
    for kind in AUTO_ORDER:
        reason = None if kind == "cpu" else _not_built_in(kind, available)
        if reason is None:
            chosen.append(kind)
        else:
            skipped.append(reason)
    return DevicePlan(requested, tuple(chosen), tuple(skipped))


def _not_built_in(kind: Kind, available: Sequence[str]) -> str | None:
    provider = PROVIDERS[kind]
    if provider in available:
        return None
    return (
        f"{provider} is not available in this onnxruntime build "
        f"(available: {', '.join(available) or 'none'}): onnxruntime-gpu not installed"
    )


def explain(kind: Kind, message: str, diagnose: Diagnose = diagnose_provider) -> str:
    """``message`` plus the loader's reason when the provider library cannot load."""
    reason = diagnose(kind)
    return f"{message}; {reason}" if reason else message


def check_active(kind: Kind, active: Sequence[str], diagnose: Diagnose = diagnose_provider) -> None:
    """Raise when the session did not really get ``kind`` (ORT's silent fallback)."""
    wanted = PROVIDERS[kind]
    if active and active[0] == wanted:
        return
    message = (
        f"{wanted} was requested but the session runs on {list(active)}: ONNX Runtime fell back "
        "silently (usually a missing CUDA, cuDNN or TensorRT library, or no visible GPU)"
    )
    raise DeviceUnavailableError(explain(kind, message, diagnose))


def warn_cpu_fallback(plan: DevicePlan, failures: Sequence[str]) -> None:
    """The loud part of ``auto`` landing on CPU."""
    reasons = "; ".join([*plan.skipped, *failures]) or "no GPU provider"
    log.warning("inference device=auto fell back to CPU: %s", reasons)


def physical_cores() -> int:
    """Physical cores usable by this process (affinity, cgroup quota, SMT aware)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        allowed = os.cpu_count() or 1
    cores = min(allowed, _cpuinfo_cores() or allowed)
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cpuinfo_cores() -> int | None:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return None
    pairs: set[tuple[str, str]] = set()
    phys = core = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            phys = value.strip()
        elif key == "core id":
            core = value.strip()
            pairs.add((phys, core))
    return len(pairs) or None


def _cgroup_quota() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None
