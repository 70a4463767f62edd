"""Fast checks of the systemd units and the image recipe, without building an image: the
units verify, their hardening score, every file they name is provided by the recipe, the
partition layouts genimage makes for each board, and build.sh's refusals."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SYSTEMD = REPO / "systemd"
IMAGE = REPO / "image-build"
BUILD = IMAGE / "build.sh"


def _load_check_rootfs():
    spec = importlib.util.spec_from_file_location("check_rootfs", IMAGE / "check_rootfs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_rootfs = _load_check_rootfs()
UNITS = check_rootfs.unit_names()
HOOK = (IMAGE / "hooks" / "customize.sh").read_text()

# Files the units name that the recipe makes rather than copies, and the hook line that
# makes each (checked below, so this list cannot drift from the hook).
MADE_BY_HOOK = {
    "/opt/appliance/venv/bin/appliance": "--find-links /tmp/wheels appliance",
    "/opt/appliance/venv/bin/python": "python3 -m venv /opt/appliance/venv",
    "/opt/appliance/README.md": "/opt/appliance/README.md",
    "/data/appliance": 'mkdir -p "$ROOTFS/data/appliance"',
    "/data/appliance/models": 'cp -a "$WORK/models" "$ROOTFS/data/appliance/models"',
    "/data/appliance/config.toml": None,  # optional: written by `models use` / the page
    "/boot/firmware/appliance.txt": None,  # a condition: the user's file, if any
}


def _install(tree: Path) -> None:
    """Lay the units out as the customize hook does, plus what the host's systemd has."""
    for src, dest in check_rootfs.installed_units():
        target = tree / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SYSTEMD / src, target)
    shutil.copytree(
        "/usr/lib/systemd/system",
        tree / "usr/lib/systemd/system",
        symlinks=True,
        dirs_exist_ok=True,
    )
    venv = tree / "opt/appliance/venv/bin"
    venv.mkdir(parents=True)
    shutil.copy(REPO / ".venv/bin/appliance", venv / "appliance")
    shutil.copy(Path("/usr/bin/python3").resolve(), venv / "python")


def _verify(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={tree}", "--man=no", *UNITS],
        capture_output=True, text=True, cwd=tree,
    )  # fmt: skip


def test_units_verify_with_nothing_on_stderr(tmp_path):
    _install(tmp_path)
    done = _verify(tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_verify_catches_a_typo_and_a_missing_binary(tmp_path):
    _install(tmp_path)
    unit = tmp_path / "usr/lib/systemd/system/appliance.service"
    unit.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHomes=yes"))
    typo = _verify(tmp_path)
    assert "Unknown key 'ProtectHomes'" in typo.stderr  # rc stays 0: stderr is the signal
    (tmp_path / "opt/appliance/venv/bin/appliance").unlink()
    assert _verify(tmp_path).returncode != 0


def test_hardening_score_is_under_the_threshold(tmp_path):
    _install(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={tmp_path}",
         f"--threshold={check_rootfs.SECURITY_THRESHOLD * 10:.0f}", "appliance.service"],
        capture_output=True, text=True,
    )  # fmt: skip
    score = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)[1])
    assert done.returncode == 0 and score < check_rootfs.SECURITY_THRESHOLD, done.stdout[-500:]


def test_service_settings_the_issue_asks_for():
    unit = (SYSTEMD / "appliance.service").read_text()
    for line in (
        "Type=notify", "Restart=on-failure", "User=appliance",
        "SupplementaryGroups=audio gpio video",
        "DeviceAllow=char-video4linux rw", "DeviceAllow=char-gpiochip rw",
        "ProtectSystem=strict", "ReadWritePaths=-/data/appliance", "PrivateTmp=yes",
        "NoNewPrivileges=yes", "ProtectHome=yes", "SystemCallFilter=@system-service",
        "Environment=APPLIANCE_DATA_DIR=/data/appliance", "MemoryMax=85%",
        # The config page on port 80, and no other capability.
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    ):  # fmt: skip
        assert re.search(rf"^{re.escape(line)}$", unit, re.M), line
    assert re.search(r"^RestrictAddressFamilies=.*AF_INET", unit, re.M)
    watchdog = int(re.search(r"^WatchdogSec=(\d+)$", unit, re.M)[1])
    assert watchdog >= 10  # the loop pings every WatchdogSec/2


def test_every_file_the_units_name_is_provided_by_the_recipe():
    shipped = {dest for _, dest in check_rootfs.installed_units()}
    for overlay in (IMAGE / "overlay").iterdir():
        shipped |= {"/" + str(p.relative_to(overlay)) for p in overlay.rglob("*")}
    for name in UNITS:
        for key, path in check_rootfs.referenced_paths((SYSTEMD / name).read_text()):
            if path in shipped:
                continue
            assert path in MADE_BY_HOOK, (
                f"{name}: {key} names {path}: nothing in the recipe makes it"
            )
            if MADE_BY_HOOK[path]:
                assert MADE_BY_HOOK[path] in HOOK, path


def test_install_list_and_overlay_files_exist():
    for src, _ in check_rootfs.installed_units():
        assert (SYSTEMD / src).is_file(), src
    assert (IMAGE / "overlay/common/boot/firmware/appliance.txt.example").is_file()


def test_rpi_recipe():
    env = (IMAGE / "boards/rpi.env").read_text()
    assert "ARCH=arm64" in env
    assert "raspi-firmware" in env and "linux-image-arm64/bookworm-backports" in env
    assert "firmware-brcm80211" in env and "non-free-firmware" in env  # Pi 4/5 Wi-Fi
    assert check_rootfs.board_dtbs("rpi") == [
        "broadcom/bcm2711-rpi-4-b.dtb",
        "broadcom/bcm2712-rpi-5-b.dtb",
    ]
    defaults = (IMAGE / "overlay/rpi/etc/default/raspi-firmware").read_text()
    assert "ROOTPART=LABEL=root" in defaults
    assert "z50-raspi-firmware" in HOOK  # kernel, initrd, DTBs, config.txt into /boot/firmware
    fstab = re.search(r"<<FSTAB\n(.*?)FSTAB", HOOK, re.S)[1]
    root = next(line.split() for line in fstab.splitlines() if line.startswith("LABEL=root"))
    assert root[1] == "/" and "noatime" in root[3].split(",")
    assert any(line.startswith("LABEL=data  /data") for line in fstab.splitlines())


def _genimage(tmp_path: Path, board: str, uboot: Path | None = None) -> Path:
    """Run the board's real genimage config on a tiny root tree."""
    rootfs = tmp_path / "rootfs"
    for sub in ("etc", "boot/firmware", "data/appliance"):
        (rootfs / sub).mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/hostname").write_text("appliance\n")
    (rootfs / "boot/firmware/appliance.txt.example").write_text("wifi_ssid = x\n")
    (rootfs / "data/appliance/marker").write_text("data\n")
    for sub in ("out", "tmp", "input"):
        (tmp_path / sub).mkdir()
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "ROOT_SIZE": "8M",
        "DATA_SIZE": "8M",
        "IMAGE_NAME": f"{board}.img",
        "UBOOT_IMAGE": str(uboot or ""),
    }
    subprocess.run(
        ["genimage", "--loglevel", "0", "--config", str(IMAGE / "genimage" / f"{board}.cfg"),
         "--rootpath", str(rootfs), "--tmppath", str(tmp_path / "tmp"),
         "--inputpath", str(tmp_path / "input"), "--outputpath", str(tmp_path / "out")],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    return tmp_path / "out" / f"{board}.img"


def _table(image: Path) -> dict:
    out = subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True)
    return json.loads(out.stdout)["partitiontable"]


def _label(image: Path, start_sector: int, fs: str) -> str:
    if fs == "vfat":
        out = subprocess.run(["mlabel", "-s", "-i", f"{image}@@{start_sector * 512}", "::"],
                             capture_output=True, text=True)  # fmt: skip
        return out.stdout.split("is")[-1].strip()
    part = image.with_suffix(f".{start_sector}")
    subprocess.run(["dd", f"if={image}", f"of={part}", "bs=512", f"skip={start_sector}",
                    "count=16384", "status=none"], check=True)  # fmt: skip
    out = subprocess.run(["e2label", str(part)], capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.parametrize("board", ["rpi", "qemu-virt"])
def test_mbr_layout(tmp_path, board):
    image = _genimage(tmp_path, board)
    table = _table(image)
    assert table["label"] == "dos"
    boot, root, data = table["partitions"]
    assert boot["type"] == "c" and boot["start"] == 4 * 2048  # FAT32 LBA at 4 MiB
    labels = [_label(image, p["start"], fs)
              for p, fs in ((boot, "vfat"), (root, "ext4"), (data, "ext4"))]  # fmt: skip
    assert labels == ["BOOT", "root", "data"]
    assert data["start"] > root["start"]  # data is last: the first boot grows it


def test_rockchip_layout_leaves_16_mib_for_the_users_uboot(tmp_path):
    uboot = tmp_path / "u-boot-rockchip.bin"
    uboot.write_bytes(b"UBOOT-TEST" * 1000)
    image = _genimage(tmp_path, "rockchip", uboot)
    table = _table(image)
    assert table["label"] == "gpt"
    starts = [p["start"] for p in table["partitions"]]
    assert starts[0] == 16 * 2048 and starts == sorted(starts)
    with open(image, "rb") as handle:
        handle.seek(64 * 512)  # where Rockchip's boot ROM looks for idbloader
        assert handle.read(10) == b"UBOOT-TEST"
    root = table["partitions"][1]
    assert "LegacyBIOSBootable" in root.get("attrs", "")  # U-Boot's distro boot picks it


def _build(*args: str, user: str | None = None, **kw) -> subprocess.CompletedProcess[str]:
    cmd = [str(BUILD), *args]
    if user:
        cmd = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def test_build_refuses_without_root_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    tmp_path.chmod(0o777)
    done = _build("qemu-virt", "--out", str(out), user="65534")
    assert done.returncode == 2
    assert "needs root" in done.stderr and "sudo" in done.stderr
    assert not out.exists()


def test_build_refuses_arm64_without_binfmt_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    # A private mount namespace where binfmt_misc is not mounted, as on a fresh machine.
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         "mount -t tmpfs none /proc/sys/fs/binfmt_misc && exec \"$0\" rpi --out \"$1\"",
         str(BUILD), str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "binfmt_misc is not mounted" in done.stderr and "update-binfmts" in done.stderr
    assert not out.exists()


def test_build_refusals_for_bad_arguments(tmp_path):
    assert "unknown board" in _build("amiga").stderr
    rock = _build("rockchip", "--out", str(tmp_path / "out"))
    # On a machine without arm64 binfmt the binfmt message comes first; both say what to do.
    assert rock.returncode == 2
    assert "--uboot" in rock.stderr or "binfmt" in rock.stderr
    assert not (tmp_path / "out").exists()


def _deb(folder: Path, name: str, arch: str, files: dict[str, str]) -> Path:
    """A real (tiny) Debian package, made with dpkg-deb."""
    root = folder / name
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1\nArchitecture: {arch}\nMaintainer: t <t@t>\n"
        "Description: a test package\n"
    )
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    deb = folder / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)],
                   check=True, capture_output=True)  # fmt: skip
    return deb


def test_build_refuses_a_kernel_package_it_cannot_use_and_writes_nothing(tmp_path):
    """--kernel-deb: a vendor kernel instead of Debian's (the Rockchip NPU needs one)."""
    out = tmp_path / "out"
    text = tmp_path / "kernel.deb"
    text.write_text("not a package")
    dtbs = _deb(tmp_path, "linux-dtbs", "amd64", {"usr/lib/linux-image-6.1.0/x.dtb": "dtb"})
    arm = _deb(tmp_path, "linux-image-arm", "arm64", {"boot/vmlinuz-6.1.0-vendor": "k"})
    cases = [
        ([str(tmp_path / "absent.deb")], "absent.deb: no such file"),
        ([str(text)], "kernel.deb is not a Debian package"),
        ([str(arm)], "linux-image-arm.deb is for arm64 and the qemu-virt image is amd64"),
        ([str(dtbs)], "none of the --kernel-deb packages holds a kernel"),
    ]
    for debs, why in cases:
        args = [arg for deb in debs for arg in ("--kernel-deb", deb)]
        done = _build("qemu-virt", "--out", str(out), *args)
        assert done.returncode == 2 and why in done.stderr, done.stderr
        assert not out.exists()


def test_build_refuses_arm64_wheels_without_llama_and_writes_nothing(tmp_path):
    out, wheels = tmp_path / "out", tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "PyAudio-0.2.14-cp311-cp311-linux_aarch64.whl").write_bytes(b"")
    # binfmt_misc as on a machine where it is set up, in a private mount namespace, so that
    # the check after it is reached on any machine.
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         "mount -t tmpfs none /proc/sys/fs/binfmt_misc"
         " && echo enabled > /proc/sys/fs/binfmt_misc/status"
         " && echo enabled > /proc/sys/fs/binfmt_misc/qemu-aarch64"
         " && exec \"$0\" rpi --out \"$1\" --arm64-wheels \"$2\"",
         str(BUILD), str(out), str(wheels)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"--arm64-wheels {wheels} has no llama_cpp_python-*aarch64*.whl" in done.stderr
    assert not out.exists()


def test_the_image_s_own_config_uses_a_camera_plugged_in_at_power_on():
    import dataclasses

    from appliance.config import AppConfig, load_config

    config = load_config(REPO / "image-build/defaults/config.toml")
    default = AppConfig()
    assert config == dataclasses.replace(
        default, vision=dataclasses.replace(default.vision, camera="auto")
    )  # and nothing else differs from the defaults


@pytest.mark.parametrize("unit", ["appliance-firstboot.service", "appliance-settings.service"])
def test_the_first_boot_oneshots_are_hardened_as_far_as_their_jobs_allow(tmp_path, unit):
    """They need root (the card's partitions, /etc, units), not all that root has: at
    most 6 (9.6 unhardened); the boot test proves the jobs still run."""
    _install(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={tmp_path}", unit],
        capture_output=True, text=True,
    )  # fmt: skip
    score = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)[1])
    assert score <= 6.0, done.stdout[-800:]
