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
    """Physical cores usable by this process: the cores (not hardware threads) of the CPUs
    in its affinity mask, bounded by the tightest CPU quota of its cgroups (v1 or v2, its
    own or a parent's)."""
    try:
        allowed = set(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        allowed = set(range(os.cpu_count() or 1))
    cores = _cpuinfo_cores(allowed) or len(allowed)
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cpuinfo_cores(allowed: set[int]) -> int | None:
    """Distinct (package, core) pairs of the ``allowed`` processors; None when
    ``/proc/cpuinfo`` cannot be read or names no cores (some VMs and architectures). When it
    does not list every allowed processor (LXCFS renumbers them), the machine's cores bound
    the count instead."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return None
    core_of: dict[int, tuple[str, str]] = {}
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        processor, core = fields.get("processor", ""), fields.get("core id")
        if processor.isdecimal() and core is not None:
            core_of[int(processor)] = (fields.get("physical id", ""), core)
    if not core_of:
        return None
    if allowed <= core_of.keys():
        return len({core_of[cpu] for cpu in allowed})
    return min(len(allowed), len(set(core_of.values())))


def _cgroup_quota() -> float | None:
    """The tightest CPU quota, in CPUs, over this process's cgroup and its ancestors (a
    parent's quota binds its children), cgroup v2 (``cpu.max``) and v1
    (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``); None without one. A container sees its
    own cgroup as the root of the mount, whatever path ``/proc/self/cgroup`` names, so the
    mount's root is always read too."""
    root = Path("/sys/fs/cgroup")
    try:
        membership = Path("/proc/self/cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        membership = []
    quotas: list[float] = []
    v2_path = "/"
    for line in membership:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2_path = path
        elif "cpu" in controllers.split(","):
            for base in dict.fromkeys((root / controllers, root / "cpu")):
                quotas.extend(q for d in _up_from(base, path) if (q := _v1_quota(d)) is not None)
    quotas.extend(q for d in _up_from(root, v2_path) if (q := _v2_quota(d)) is not None)
    return min(quotas) if quotas else None


def _up_from(base: Path, path: str) -> list[Path]:
    """``base``/``path`` and each of its ancestors up to ``base`` itself."""
    parts = [p for p in path.split("/") if p and p not in (".", "..")]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, period = folder.joinpath("cpu.max").read_text(encoding="utf-8").split()[:2]
        return None if quota == "max" else _ratio(int(quota), int(period))
    except (OSError, ValueError):
        return None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int(folder.joinpath("cpu.cfs_quota_us").read_text(encoding="utf-8"))
        period = int(folder.joinpath("cpu.cfs_period_us").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _ratio(quota, period)


def _ratio(quota: int, period: int) -> float | None:
    return quota / period if quota > 0 and period > 0 else None
