"""`appliance doctor` on this machine and on fixture trees of other boards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import appliance

pytestmark = pytest.mark.e2e
BOARDS = Path(__file__).parent / "fixtures" / "boards"


def doctor(board: str | Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    if board is not None:
        env["APPLIANCE_SYSROOT"] = str(BOARDS / board if isinstance(board, str) else board)
    return appliance("doctor", env=env)


def test_doctor_reads_this_machine_truly():
    proc = doctor()
    assert proc.returncode in (0, 8), proc.stderr
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    total_gb = int(meminfo["MemTotal"].split()[0]) * 1024 / 2**30
    assert f"{total_gb:.1f} GB RAM" in proc.stdout
    assert f"{len(os.sched_getaffinity(0))} cores" in proc.stdout
    assert "smollm2-135m-instruct" in proc.stdout and "[llama.cpp]" in proc.stdout
    if not Path("/proc/device-tree").exists():
        assert "no Rockchip NPU" in proc.stdout


def test_rk3588_big_cores_zram_and_npu():
    out = doctor("rk3588-8gb").stdout
    assert "Radxa ROCK 5B (rk3588)" in out
    assert "4 × 2.4 GHz + 4 × 1.8 GHz: llama.cpp uses the 4 big cores" in out
    assert "lz4" in out and "typical" in out
    assert "RK3588" in out and "librkllmrt.so" in out and "install Rockchip's" in out


def test_rk3566_is_told_plainly_that_rkllm_does_not_support_it(tmp_path):
    root = tmp_path / "rk3566"
    shutil.copytree(BOARDS / "rk3588-8gb", root)
    (root / "proc/device-tree/compatible").write_bytes(b"pine64,quartz64-a\0rockchip,rk3566\0")
    (root / "proc/device-tree/model").write_bytes(b"Pine64 Quartz64 Model A\0")
    out = doctor(root).stdout
    assert "RK3566" in out and "not support" in out


def test_small_boards_get_zram_and_swap_advice():
    pi4 = doctor("pi4-2gb-zram").stdout
    assert "zstd" in pi4 and "ratio 2.9:1 (measured)" in pi4
    pi5 = doctor("pi5-4gb").stdout
    assert "no zram swap on a board with 4 GB or less" in pi5
    assert "swap on disk or SD card" in pi5 and "systemd-zram-generator" in pi5
    container = doctor("container-1gb").stdout
    assert "cgroup is limited to 1.0 GB" in container and "2 cores" in container


def test_a_missing_model_is_a_problem_with_its_fix(tmp_path):
    from appliance.config import default_models_dir
    from appliance.models.catalog import load_catalog

    models = tmp_path / "models"
    for entry in load_catalog().values():
        for f in entry.files:
            if "tts/" in f.path:
                continue  # the voice is missing
            (models / f.path).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(default_models_dir() / f.path, models / f.path)
    proc = appliance("--models-dir", str(models), "doctor", env={})
    assert proc.returncode == 8
    assert "FAIL" in proc.stdout and "en_US-joe-medium.onnx" in proc.stdout
    assert "appliance models prepare" in proc.stdout


def test_help_lists_doctor():
    proc = subprocess.run([sys.executable, "-m", "appliance", "--help"], capture_output=True,
                          text=True)  # fmt: skip
    assert "doctor" in proc.stdout and "  8  " in proc.stdout


def test_a_missing_end_of_turn_model_is_a_warning_with_the_fallback(tmp_path):
    from appliance.config import default_models_dir
    from appliance.models.catalog import load_catalog

    models = tmp_path / "models"
    for entry in load_catalog().values():
        for f in entry.files:
            if f.path.startswith("turn/"):
                continue  # Smart Turn is missing: requests end after a fixed silence
            (models / f.path).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(default_models_dir() / f.path, models / f.path)
    proc = appliance("--models-dir", str(models), "doctor", env={})
    assert "[WARN] turn" in proc.stdout, proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.startswith("[WARN] turn"))
    assert "smart-turn-v3.2-cpu.onnx is missing" in line
    assert line.endswith("requests end after 0.7 s of silence")
    assert "[FAIL]" not in proc.stdout or "audio" in proc.stdout
