"""Is the Rockchip NPU language-model path (RKLLM) usable on this machine, and if not, why?

Everything is read below `root`, so tests point it at a fixture tree:
- the SoC: `proc/device-tree/compatible` (NUL-separated, most specific first, e.g.
  "radxa,rock-5b\\0rockchip,rk3588\\0") and `proc/device-tree/model`;
- the NPU: Rockchip's vendor rknpu driver exposes either a misc device `dev/rknpu`
  (DMA-heap builds) or a DRM node whose `sys/class/drm/<card|renderD>/device/driver` links
  to the platform driver "RKNPU" (the usual /dev/dri/card1 + renderD129 on RK3588). The
  mainline "rocket" accel driver (Linux 6.18+) drives the same hardware but RKLLM cannot
  use it;
- the driver version, "RKNPU driver: v0.9.8": debugfs `sys/kernel/debug/rknpu/version`
  (root only), procfs `proc/rknpu/version` (kernels built with RKNPU_PROC_FS), also
  `proc/debug/rknpu/version` and `sys/module/rknpu/version`. An unreadable file is
  reported in `reason`, not raised;
- the runtime: librkllmrt.so given as a path, in the usual library directories under
  `root`, or (only when `root` is "/") wherever ctypes.util.find_library finds it.

RKLLM runs on RK3588/RK3588S, RK3576, RK3562 and RV1126B (airockchip/rknn-llm README).
RK3566/RK3568 have an NPU too, but RKLLM does not support them.
"""

from __future__ import annotations

import ctypes.util
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

RKLLM_SOCS = ("RK3588", "RK3588S", "RK3576", "RK3562", "RV1126B")
VERSION_FILES = (
    "sys/kernel/debug/rknpu/version",
    "proc/rknpu/version",
    "proc/debug/rknpu/version",
    "sys/module/rknpu/version",
)
LIBRARY_DIRS = (
    "usr/lib",
    "usr/local/lib",
    "lib",
    "usr/lib/aarch64-linux-gnu",
    "lib/aarch64-linux-gnu",
)
_SOC_RE = re.compile(r"rockchip,((?:rk|rv)\d{4}[a-z]?)")
_SOC_IN_TEXT_RE = re.compile(r"\b((?:RK|RV)\d{4}[A-Z]?)\b", re.I)


@dataclass(frozen=True)
class NpuStatus:
    soc: str | None
    """e.g. "RK3588", upper case; None when not a Rockchip board or not recognised."""
    npu_device: bool
    driver_version: str | None
    rkllm_supported: bool
    """The SoC is one RKLLM supports."""
    runtime_found: bool
    reason: str
    """One sentence: why the NPU LLM path is on or off."""
    runtime_problem: str = ""
    """Why the runtime found cannot be used (a release whose rkllm.h this appliance does
    not follow, or a build it does not know); "" when it can, or none was found."""

    @property
    def available(self) -> bool:
        return self.rkllm_supported and self.npu_device and self.usable_runtime

    @property
    def usable_runtime(self) -> bool:
        return self.runtime_found and not self.runtime_problem


def detect_npu(
    root: Path = Path("/"), *, library: str | Path = "librkllmrt.so", declared: str = ""
) -> NpuStatus:
    """`declared`: llm.rkllm_runtime, the owner's word for a build of their own."""
    root = Path(root)
    compatible, _ = _read(root / "proc/device-tree/compatible")
    model_text, _ = _read(root / "proc/device-tree/model")
    model = model_text.strip("\0 \n") if model_text else None
    runtime = _runtime_found(root, library)
    lib_name = Path(str(library)).name

    def not_rockchip(reason: str) -> NpuStatus:
        return NpuStatus(None, False, None, False, runtime, reason)

    if compatible is None and model is None:
        machine = platform.machine() or "unknown machine"
        return not_rockchip(f"not a Rockchip board ({machine}, no device tree)")
    entries = [e.strip() for e in (compatible or "").split("\0") if e.strip()]
    board = model or (entries[0] if entries else "unnamed board")
    if (
        not any(e.startswith("rockchip,") for e in entries)
        and "rockchip" not in (model or "").lower()
    ):
        return not_rockchip(f"not a Rockchip board ({board})")
    soc = _soc(entries, model)
    if soc is None:
        return not_rockchip(f"a Rockchip board whose SoC its device tree does not name ({board})")
    supported = soc in RKLLM_SOCS
    # The runtime's file is read (hashed) only where RKLLM could run.
    checked = runtime and supported
    release, problem = _runtime_release(root, library, declared) if checked else ("", "")
    device, other_driver = _npu_device(root)
    version, unreadable = _driver_version(root)
    if not supported:
        reason = (
            f"{soc}: Rockchip's RKLLM does not support this SoC "
            f"(it runs on {', '.join(RKLLM_SOCS)})"
        )
    elif not device and other_driver:
        reason = (
            f"{soc}: the NPU is driven by the mainline '{other_driver}' driver, and RKLLM needs "
            "Rockchip's vendor rknpu driver (a Rockchip BSP kernel)"
        )
    elif not device:
        reason = (
            f"{soc}, but no NPU device (no /dev/rknpu and no DRM node of the rknpu driver): "
            "the kernel's rknpu driver is not loaded"
        )
    else:
        if version:
            driver = f"NPU driver {version}"
        elif unreadable:
            driver = f"NPU driver (version unreadable: {unreadable})"
        else:
            driver = "NPU driver (version unknown)"
        if runtime and problem:
            reason = f"{soc} with {driver}, but {problem}"
        elif runtime:
            named = f"{lib_name} {release}" if release else lib_name
            reason = f"{soc} with {driver} and {named}: the NPU LLM path is on"
        else:
            reason = f"{soc} with {driver}, but {lib_name} is not installed"
    return NpuStatus(soc, device, version, supported, runtime, reason, problem)


def _runtime_release(root: Path, library: str | Path, declared: str) -> tuple[str, str]:
    """(release, "") or ("", why it cannot be used), from the file's content."""
    from appliance.errors import ModelError
    from appliance.llm.rkllm_runtimes import runtime_release

    name = str(library)
    candidates = [Path(name)] if "/" in name else [root / d / name for d in LIBRARY_DIRS]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None and not declared:
        return "", ""  # found by the loader elsewhere: checked when it is loaded
    try:
        return runtime_release(path, declared), ""
    except (ModelError, OSError) as err:
        return "", str(err)


def _read(path: Path) -> tuple[str | None, str | None]:
    """(text, None), (None, None) when absent, or (None, why) when it cannot be read."""
    try:
        return path.read_bytes().decode("utf-8", "replace"), None
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except OSError as err:  # PermissionError (debugfs is root-only), IsADirectoryError, EIO
        return None, (err.strerror or str(err)).lower()


def _soc(entries: list[str], model: str | None) -> str | None:
    for entry in entries:
        match = _SOC_RE.fullmatch(entry.lower())
        if match:
            return match.group(1).upper()
    for text in (model or "", *entries):  # board-specific strings such as "rockchip,rk3588-evb1"
        match = _SOC_IN_TEXT_RE.search(text.replace(",", " ").replace("-", " "))
        if match:
            return match.group(1).upper()
    return None


def _npu_device(root: Path) -> tuple[bool, str | None]:
    """(rknpu device present, name of another driver bound to an NPU node)."""
    for node in ("dev/rknpu", "sys/class/misc/rknpu"):
        if os.path.lexists(root / node):
            return True, None
    other = None
    for cls in ("drm", "accel"):
        try:
            entries = sorted((root / "sys/class" / cls).iterdir())
        except OSError:
            continue
        for entry in entries:
            try:
                driver = os.path.basename(os.readlink(entry / "device" / "driver"))
            except OSError:
                continue
            if driver.lower() == "rknpu":
                return True, None
            if driver == "rocket":
                other = driver
    return False, other


def _driver_version(root: Path) -> tuple[str | None, str | None]:
    """(version, None) from the first readable file, else (None, why the files could not be
    read, or None when there are none)."""
    problems = []
    for rel in VERSION_FILES:
        text, problem = _read(root / rel)
        if problem:
            problems.append(f"/{rel}: {problem}")
        if text is None:
            continue
        match = re.search(r"(\d+\.\d+\.\d+)", text)
        return (match.group(1) if match else text.strip()), None
    return None, "; ".join(problems) or None


def _runtime_found(root: Path, library: str | Path) -> bool:
    name = str(library)
    if "/" in name:
        return Path(name).is_file()
    if any((root / d / name).is_file() for d in LIBRARY_DIRS):
        return True
    if root != Path("/"):
        return False  # a fixture tree: do not look at this machine's libraries
    short = re.sub(r"^lib|\.so(\.\d+)*$", "", name)
    return ctypes.util.find_library(short) is not None
