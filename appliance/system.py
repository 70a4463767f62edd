"""What board this is: its name, its CPU clusters (big.LITTLE on RK3588), its cores.

Every reader takes the filesystem root, so tests run against fixture trees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", "replace").replace("\x00", " ").strip()
    except OSError:
        return None


def board_name(root: Path = Path("/")) -> str:
    """The device-tree model (ARM boards) or the DMI vendor and product (PCs, VMs)."""
    model = _text(root / "proc/device-tree/model")
    if model:
        return model
    dmi = root / "sys/devices/virtual/dmi/id"
    vendor, product = _text(dmi / "sys_vendor"), _text(dmi / "product_name")
    name = " ".join(part for part in (vendor, product) if part)
    return name or f"unknown {os.uname().machine} machine"


def soc(root: Path = Path("/")) -> str | None:
    """The SoC named in the device tree, e.g. 'rk3588' or 'bcm2712'."""
    compatible = _text(root / "proc/device-tree/compatible")
    if not compatible:
        return None
    last = compatible.split()[-1]
    return last.split(",", 1)[-1]


@dataclass(frozen=True)
class CpuCluster:
    max_khz: int
    cpus: tuple[int, ...]


def cpu_clusters(root: Path = Path("/")) -> list[CpuCluster]:
    """CPUs grouped by their maximum clock, fastest first: one group on a Pi, two on an
    RK3588 (4 × Cortex-A76 at 2.4 GHz, 4 × Cortex-A55 at 1.8 GHz)."""
    base = root / "sys/devices/system/cpu"
    groups: dict[int, list[int]] = {}
    for entry in sorted(base.glob("cpu[0-9]*")):
        freq = _text(entry / "cpufreq/cpuinfo_max_freq")
        if freq is None or not freq.isdigit():
            continue
        groups.setdefault(int(freq), []).append(int(entry.name[3:]))
    return [CpuCluster(khz, tuple(sorted(cpus))) for khz, cpus in sorted(groups.items(),
                                                                        reverse=True)]  # fmt: skip


def usable_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return set(range(os.cpu_count() or 1))


def llm_threads(root: Path = Path("/")) -> int:
    """Threads for llama.cpp: on a big.LITTLE board only the big cores (a token waits for
    its slowest thread, so a little core drags the big ones down); else every core."""
    usable = usable_cpus()
    clusters = cpu_clusters(root)
    if len(clusters) > 1:
        big = (
            [c for c in clusters[0].cpus if c in usable]
            if root == Path("/")
            else list(clusters[0].cpus)
        )
        if big:
            return len(big)
    return len(usable) if root == Path("/") else sum(len(c.cpus) for c in clusters) or 1
