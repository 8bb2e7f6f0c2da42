"""``physical_cores`` (ONNX Runtime's intra-op threads by default) on made-up machines: a
fake ``/proc`` and ``/sys/fs/cgroup`` under a temporary folder and a given CPU affinity.

Only a quota in ``/sys/fs/cgroup/cpu.max`` was read, which is where a cgroup v2 container
sees its own: a quota under cgroup v1 (``docker --cpus`` on a v1 host, this development
machine's layout) or on a parent cgroup (systemd ``CPUQuota=``, a v2 host without a cgroup
namespace) was missed, and every core of the host got an ORT thread; and the two hardware
threads of one core in the affinity mask counted as two cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.inference import device

V1 = "sys/fs/cgroup/cpu,cpuacct"


def machine(root: Path, files: dict[str, str], *, cores: int = 8, smt: int = 1) -> None:
    """Write ``files`` (paths relative to ``/``) and a ``/proc/cpuinfo`` of ``cores`` cores
    with ``smt`` hardware threads each (processors numbered core by core)."""
    blocks = [
        f"processor\t: {core * smt + t}\nphysical id\t: 0\ncore id\t\t: {core}\ncpu cores\t: {cores}\n"
        for core in range(cores)
        for t in range(smt)
    ]
    files = {"proc/cpuinfo": "\n".join(blocks) + "\n", **files}
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(device, "Path", lambda p: tmp_path / str(p).lstrip("/"))
    return tmp_path


def affinity(monkeypatch: pytest.MonkeyPatch, cpus: set[int]) -> None:
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda _pid: set(cpus))


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(  # docker --cpus=1.5 on a cgroup v1 host: the mount is the container's own cgroup
            {"proc/self/cgroup": "4:cpu,cpuacct:/docker/0123abcd\n1:name=systemd:/docker/0123abcd\n0::/\n",
             f"{V1}/cpu.cfs_quota_us": "150000\n", f"{V1}/cpu.cfs_period_us": "100000\n"},
            2,
            id="v1-container",
        ),
        pytest.param(  # a systemd service with CPUQuota=100% on a cgroup v1 host
            {"proc/self/cgroup": "4:cpu,cpuacct:/system.slice/tw.service\n0::/\n",
             f"{V1}/cpu.cfs_quota_us": "-1\n", f"{V1}/cpu.cfs_period_us": "100000\n",
             f"{V1}/system.slice/tw.service/cpu.cfs_quota_us": "100000\n",
             f"{V1}/system.slice/tw.service/cpu.cfs_period_us": "100000\n"},
            1,
            id="v1-service",
        ),
        pytest.param(  # a systemd service with CPUQuota=200% on a cgroup v2 host
            {"proc/self/cgroup": "0::/system.slice/tw.service\n",
             "sys/fs/cgroup/system.slice/cpu.max": "max 100000\n",
             "sys/fs/cgroup/system.slice/tw.service/cpu.max": "200000 100000\n"},
            2,
            id="v2-service",
        ),
        pytest.param(  # the parent's quota binds its children
            {"proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
             "sys/fs/cgroup/kubepods/pod1/cpu.max": "100000 100000\n",
             "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "max 100000\n"},
            1,
            id="v2-parent",
        ),
        pytest.param(  # a cgroup v2 container (its own cgroup namespace): what was read before
            {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "300000 100000\n"},
            3,
            id="v2-container",
        ),
        pytest.param(
            {"proc/self/cgroup": "4:cpu,cpuacct:/\n0::/\n",
             f"{V1}/cpu.cfs_quota_us": "-1\n", f"{V1}/cpu.cfs_period_us": "100000\n"},
            8,
            id="no-quota",
        ),
        pytest.param({}, 8, id="no-cgroup-files"),
    ],
)  # fmt: skip
def test_a_cpu_quota_anywhere_above_the_process_bounds_the_cores(
    root: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], expected: int
) -> None:
    machine(root, files)
    affinity(monkeypatch, set(range(8)))
    assert device.physical_cores() == expected


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [({0, 1}, 1), ({0, 2}, 2), ({0, 1, 2, 3}, 2), ({1, 2, 3}, 2), (set(range(16)), 8)],
)
def test_hardware_threads_of_one_core_in_the_affinity_mask_count_once(
    root: Path, monkeypatch: pytest.MonkeyPatch, cpus: set[int], expected: int
) -> None:
    machine(root, {}, cores=8, smt=2)  # processors 2k and 2k+1 share core k
    affinity(monkeypatch, cpus)
    assert device.physical_cores() == expected


def test_without_core_ids_every_allowed_processor_counts(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (root / "proc").mkdir()
    (root / "proc/cpuinfo").write_text("processor\t: 0\n\nprocessor\t: 1\n\nprocessor\t: 2\n", encoding="utf-8")
    affinity(monkeypatch, {0, 1, 2})
    assert device.physical_cores() == 3


def test_processors_cpuinfo_does_not_list_fall_back_to_the_machines_cores(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(root, {}, cores=2, smt=2)  # LXCFS: processors renumbered 0-3, the mask names host CPUs
    affinity(monkeypatch, {6, 7, 8})
    assert device.physical_cores() == 2
