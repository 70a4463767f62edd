"""What is inside the arm64 Raspberry Pi image, checked without building it again.

`image-build/build.sh rpi` takes about half an hour here (an arm64 root file system under
qemu-user), too long for CI. Every build reads its finished image back with
`image-build/inspect_image.py` and writes a manifest beside it; the manifest of the last rpi
build is kept in `image-build/manifests/rpi.json`, and these tests check it: partitions,
boot files, the kernel's device trees, that every compiled file in the venv is aarch64,
that the venv holds exactly the locked versions, and the models byte for byte.

APPLIANCE_RPI_IMAGE=image-build/out/rpi/appliance-rpi.img reads a built image itself instead.
The qemu-virt image CI builds goes through the same inspector (tests/test_image.py).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
KEPT_MANIFEST = REPO / "image-build" / "manifests" / "rpi.json"


def _inspector() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "inspect_image", REPO / "image-build" / "inspect_image.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["inspect_image"] = module
    spec.loader.exec_module(module)
    return module


inspector = _inspector()


@pytest.fixture(scope="module")
def rpi() -> dict:
    if os.environ.get("APPLIANCE_RPI_IMAGE"):
        return inspector.inspect(Path(os.environ["APPLIANCE_RPI_IMAGE"]))
    return json.loads(KEPT_MANIFEST.read_text())


def test_the_rpi_image_passes_every_check(rpi):
    assert inspector.problems(rpi, "rpi") == []


def test_it_is_an_mbr_card_the_pi_boot_rom_reads(rpi):
    boot, root, data = rpi["partitions"]
    assert rpi["partition_table"] == "dos"
    assert (boot["label"], boot["filesystem"], boot["type"]) == ("BOOT", "vfat", "c")
    assert boot["start_mib"] == 4 and boot["bootable"]
    assert (root["label"], root["filesystem"]) == ("root", "ext4")
    assert (data["label"], data["filesystem"]) == ("data", "ext4")
    assert boot["start_mib"] < root["start_mib"] < data["start_mib"]


def test_its_kernel_and_device_trees_cover_the_pi_4_and_pi_5(rpi):
    (kernel,) = rpi["root"]["kernels"]
    assert kernel.startswith("6.12.") and kernel.endswith("-arm64")
    files = rpi["boot"]["files"]
    assert {"bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2712-rpi-5-b.dtb"} <= set(files)
    assert f"vmlinuz-{kernel}" in files and f"initrd.img-{kernel}" in files
    config = rpi["boot"]["config.txt"]
    assert "arm_64bit=1" in config and f"kernel=vmlinuz-{kernel}" in config
    assert "root=LABEL=root" in rpi["boot"]["cmdline.txt"]
    assert rpi["root"]["os"] == "Debian GNU/Linux 12 (bookworm)"


def test_every_compiled_file_in_its_venv_is_arm64(rpi):
    venv = rpi["root"]["venv"]
    assert list(venv["elf_files"]) == ["aarch64"]
    assert venv["elf_files"]["aarch64"] > 100
    assert venv["python"].startswith("3.11.")
    # the cross-compiled llama.cpp and the PyAudio compiled in the chroot are among them
    assert venv["distributions"]["llama-cpp-python"] == "0.3.36"
    assert "pyaudio" in venv["distributions"]


def test_it_carries_the_default_models_byte_for_byte(rpi):
    models = rpi["data"]["models"]
    catalogued = inspector.catalog_files()
    assert catalogued and set(catalogued) <= set(models)
    assert "stop-keyword.npz" in models


# ---- the checks catch what they are for -------------------------------------------------


def _broken(rpi: dict, change) -> list[str]:
    manifest = copy.deepcopy(rpi)
    change(manifest)
    return inspector.problems(manifest, "rpi")


def test_an_x86_library_in_the_arm64_venv_is_found(rpi):
    def add_x86(m):
        m["root"]["venv"]["elf_files"]["x86-64"] = 1
        m["root"]["venv"]["elf_examples"]["x86-64"] = ["lib/python3.11/site-packages/x.so"]

    found = _broken(rpi, add_x86)
    assert found == ["1 x86-64 files in the aarch64 venv (e.g. lib/python3.11/site-packages/x.so)"]


def test_a_missing_pi_5_tree_and_a_wrong_pin_are_found(rpi):
    def damage(m):
        m["boot"]["files"].remove("bcm2712-rpi-5-b.dtb")
        m["root"]["venv"]["distributions"]["llama-cpp-python"] = "0.3.2"

    found = _broken(rpi, damage)
    assert "bcm2712-rpi-5-b.dtb is not on the boot partition" in found
    assert "venv has llama-cpp-python 0.3.2, the lock says 0.3.36" in found


def test_a_changed_model_host_keys_and_a_disabled_service_are_found(rpi):
    def damage(m):
        name = next(iter(inspector.catalog_files()))
        m["data"]["models"][name]["sha256"] = "0" * 64
        m["root"]["ssh_host_keys"] = ["ssh_host_ed25519_key"]
        m["root"]["enabled"].remove("appliance.service")

    found = _broken(rpi, damage)
    assert any(p.startswith("model ") and "differs from the catalog" in p for p in found)
    assert "the image carries SSH host keys: ['ssh_host_ed25519_key']" in found
    assert "appliance.service is not enabled" in found


def test_a_file_that_is_not_an_image_gets_a_clear_error(tmp_path):
    junk = tmp_path / "card.img"
    junk.write_bytes(b"not a disk" * 1000)
    with pytest.raises(inspector.ImageError):
        inspector.inspect(junk)
    with pytest.raises(inspector.ImageError, match="no such file"):
        inspector.inspect(tmp_path / "missing.img")
