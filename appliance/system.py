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
    if name:
        return name
    cpu = ""
    for line in (_text(root / "proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("Model", "model name", "Hardware") and value.strip():
            cpu = value.strip()
            break
    machine = os.uname().machine
    return f"{machine} machine ({cpu})" if cpu else f"unknown {machine} machine"


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


def cpu_count(root: Path = Path("/")) -> int:
    """Cores this process may use (its affinity) on this machine; on a fixture tree, the
    cores the tree lists (`online`, else `possible`)."""
    if root == Path("/"):
        return len(usable_cpus())
    for name in ("online", "possible"):
        text = _text(root / "sys/devices/system/cpu" / name)
        if text:
            count = 0
            for part in text.split(","):
                low, _, high = part.partition("-")
                count += int(high or low) - int(low) + 1
            return count
    return max(1, sum(len(c.cpus) for c in cpu_clusters(root)))


def usable_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return set(range(os.cpu_count() or 1))


def llm_threads(root: Path = Path("/")) -> int:
    """Threads for llama.cpp: on a big.LITTLE board only the big cores (a token waits for
    its slowest thread, so a little core drags the big ones down); else every core."""
    clusters = cpu_clusters(root)
    if len(clusters) > 1:
        big = clusters[0].cpus
        if root == Path("/"):
            big = tuple(c for c in big if c in usable_cpus())
        if big:
            return len(big)
    return cpu_count(root)
