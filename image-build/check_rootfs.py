"""Checks on an image's root filesystem tree, run by build.sh on every build (and by the
tests): the units verify cleanly, every file they reference exists in the tree, the
hardening score is under the threshold, and an arm64 board's kernel has its device trees.

    python image-build/check_rootfs.py ROOTFS BOARD
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECURITY_THRESHOLD = 2.0
"""systemd-analyze security's exposure score (0 safest … 10) appliance.service must stay
under. It scores 1.7 today; 2.0 leaves room for one more opening that a new stage may
need, and catches a lost block of settings (dropping SystemCallFilter alone adds 1.0+).
What is left open is what the appliance needs: sound, GPIO, camera and NPU devices, IP
and CAP_NET_BIND_SERVICE for the config page on port 80, the audio/gpio/video groups (no
PrivateUsers), executable ctypes callbacks (no MemoryDenyWriteExecute), and /proc/meminfo
(no ProcSubset=pid)."""

_PATH_KEYS = {
    "ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop", "ExecReload",
    "WorkingDirectory", "ReadWritePaths", "ReadOnlyPaths", "EnvironmentFile",
    "ConditionPathExists", "Documentation",
}  # fmt: skip
_ENV_PATH = re.compile(r"^(APPLIANCE_[A-Z_]+)=(/\S+)$")


def installed_units() -> list[tuple[str, str]]:
    """(source name in systemd/, destination in the image) for every installed file."""
    rows = []
    for line in (REPO / "systemd/install.list").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            src, dest, _mode = line.split()
            rows.append((src, dest))
    return rows


def unit_names() -> list[str]:
    return [Path(dest).name for src, dest in installed_units() if src.endswith(".service")]


def referenced_paths(unit_text: str) -> list[tuple[str, str]]:
    """(key, absolute path) for every file or directory a unit names."""
    found = []
    for raw in unit_text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if key == "Environment":
            match = _ENV_PATH.match(value.strip())
            if match:
                found.append((f"Environment {match[1]}", match[2]))
            continue
        if key not in _PATH_KEYS or not value:
            continue
        words = shlex.split(value)
        if key.startswith("Exec"):
            words = words[:1]
            words = [w.lstrip("-@:+!") for w in words]
        for word in words:
            word = word.lstrip("-!")
            if word.startswith("file://"):
                word = word[len("file://") :]
            if word.startswith("/"):
                found.append((key, word))
    return found


def check(rootfs: Path, board: str) -> list[str]:
    problems = []
    units = [rootfs / "usr/lib/systemd/system" / name for name in unit_names()]
    for unit in units:
        for key, path in referenced_paths(unit.read_text()):
            target = rootfs / path.lstrip("/")
            if key.startswith("Condition"):
                continue  # a condition names what may or may not be there
            if key.startswith("Environment") and target.parent.is_dir():
                continue  # a file the appliance writes later (the config), in a directory we make
            if not target.exists():
                problems.append(f"{unit.name}: {key} names {path}, which is not in the image")
    verify = subprocess.run(
        ["systemd-analyze", "verify", f"--root={rootfs}", "--man=no", *(u.name for u in units)],
        capture_output=True, text=True,
    )  # fmt: skip
    noise = [ln for ln in verify.stderr.splitlines() if ln.strip()]
    if verify.returncode or noise:
        shown = " | ".join(noise or [f"rc {verify.returncode}"])
        problems.append(f"systemd-analyze verify: {shown}")
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={rootfs}",
         f"--threshold={SECURITY_THRESHOLD * 10:.0f}", "appliance.service"],
        capture_output=True, text=True,
    )  # fmt: skip
    if security.returncode:
        tail = security.stdout[-300:]
        problems.append(f"systemd-analyze security over {SECURITY_THRESHOLD}: {tail}")
    for dtb in board_dtbs(board):
        if not list(rootfs.glob(f"usr/lib/linux-image-*/{dtb}")):
            problems.append(f"{board}: the kernel has no device tree {dtb}")
    return problems


def board_env(board: str) -> dict[str, str]:
    """The variables of image-build/boards/BOARD.env (ARCH, REQUIRED_DTBS, …)."""
    env = (REPO / "image-build/boards" / f"{board}.env").read_text()
    return {m[1]: m[2] for m in re.finditer(r'^([A-Z_]+)="?([^"\n]*)"?$', env, re.M)}


def board_dtbs(board: str) -> list[str]:
    return board_env(board).get("REQUIRED_DTBS", "").split()


def main() -> int:
    rootfs, board = Path(sys.argv[1]), sys.argv[2]
    problems = check(rootfs, board)
    for problem in problems:
        print(f"check_rootfs: {problem}", file=sys.stderr)
    if not problems:
        print(f"    units verified, every referenced file present, security < {SECURITY_THRESHOLD}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
