"""Simulated hardware for the boot test (tests/test_image.py), plugged into a test's copy
of the card before power-on, as a user would plug a camera or a GPIO board in:

- a camera: vivid, the kernel's virtual V4L2 camera (Debian builds it as a module);
- eight GPIO lines: Debian's kernels build neither gpio-sim nor (amd64) gpio-mockup, so a
  CP2112 USB-HID GPIO bridge is played through /dev/uhid (tests/fixtures/cp2112) and the
  kernel's own hid-cp2112 driver makes /dev/gpiochip0 of it.

Files go into the root file system with debugfs: no mount, no loop device.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
CP2112_SIM = REPO / "tests" / "fixtures" / "cp2112" / "cp2112_sim.py"
SIM_UNIT = """\
[Unit]
Description=A simulated CP2112 USB GPIO bridge (the boot test's)
After=systemd-modules-load.service systemd-udevd.service
Before=appliance.service

[Service]
Type=notify
ExecStart=/usr/bin/python3 /usr/local/lib/cp2112-sim/cp2112_sim.py

[Install]
WantedBy=multi-user.target
"""
LINES = "/run/cp2112-sim/lines.json"
"""Where the simulated bridge writes its lines' state (outputs and values)."""
PORCH_PIN = 3


def write_into_root(disk: Path, offset: int, files: dict[str, str | Path], work: Path,
                    *, links: dict[str, str] | None = None) -> None:  # fmt: skip
    """Write `files` (guest path → text, or a host file) and `links` (guest path → target)
    into the ext4 root file system that starts at byte `offset` of `disk`."""
    commands = []
    folders = sorted({str(Path(p).parent) for p in [*files, *(links or {})]})
    commands += [f"mkdir {folder}" for folder in folders]  # an existing one: said, no harm
    for index, (target, content) in enumerate(files.items()):
        source = content if isinstance(content, Path) else work / f"into-root-{index}"
        if not isinstance(content, Path):
            source.write_text(content)
            source.chmod(0o644)
        commands.append(f"write {source} {target}")
    commands += [f"symlink {link} {target}" for link, target in (links or {}).items()]
    subprocess.run(
        ["debugfs", "-w", "-f", "-", f"{disk}?offset={offset}"],
        input="\n".join(commands) + "\n", capture_output=True, text=True, check=True,
    )  # fmt: skip
    for target in files:
        check = subprocess.run(["debugfs", "-R", f"stat {target}", f"{disk}?offset={offset}"],
                               capture_output=True, text=True)  # fmt: skip
        assert "Type: regular" in check.stdout, (target, check.stderr)


def plug_in_a_camera(disk: Path, offset: int, work: Path) -> None:
    """vivid loaded at power-on as a USB camera's driver would be: only its capture node,
    /dev/video0."""
    write_into_root(disk, offset, {
        "/etc/modules-load.d/vivid.conf": "vivid\n",
        "/etc/modprobe.d/vivid.conf": "options vivid node_types=0x1\n",
    }, work)  # fmt: skip


def plug_in_a_gpio_bridge(disk: Path, offset: int, work: Path) -> None:
    """The simulated CP2112, started before the appliance (its unit is ready once
    /dev/gpiochip0 is there for the gpio group)."""
    unit = "/etc/systemd/system/cp2112-sim.service"
    write_into_root(
        disk,
        offset,
        {
            "/etc/modules-load.d/uhid.conf": "uhid\n",
            "/usr/local/lib/cp2112-sim/cp2112_sim.py": CP2112_SIM,
            unit: SIM_UNIT,
        },
        work,
        links={"/etc/systemd/system/multi-user.target.wants/cp2112-sim.service": unit},
    )


def lines(shell: Any) -> dict[str, list[Any]]:
    rc, text = shell.run(f"cat {LINES}")
    assert rc == 0, text
    return json.loads(text)


def check_a_gpio_device(shell: Any, web: requests.Session, base: str, csrf: str) -> None:
    """A light added on the config page, on line 3 of the bridge: after the restart the
    page asks for, "turn on the porch light" through the API drives the line high, as the
    bridge sees it, and "turn it off" low; the service runs as its own user throughout."""
    headers = {"X-CSRF-Token": csrf, "Connection": "close"}
    before = lines(shell)
    assert before["values"] == [0] * 8, before
    config = web.get(base + "/api/config", timeout=60).json()
    saved = web.put(base + "/api/config", headers=headers, timeout=60, json={
        "version": config["version"], "settings": {},
        "devices": [{"name": "porch light", "kind": "light", "gpio": {"pin": PORCH_PIN}}],
    })  # fmt: skip
    assert saved.status_code == 200, saved.text
    assert any("restarts" in line for line in saved.json()["restart"]), saved.json()
    restarted_at = time.monotonic()
    rc, out = shell.run("systemctl restart appliance.service; systemctl is-active "
                        "appliance.service", timeout=900)  # fmt: skip
    assert rc == 0 and out.strip() == "active", out
    # Active is READY=1; the page and the engines follow: wait for an idle state.
    deadline = time.monotonic() + 900
    state = ""
    while state != "idle":
        assert time.monotonic() < deadline, f"not idle 900 s after the restart: {state}"
        try:
            status = web.get(base + "/api/status", headers={"Connection": "close"}, timeout=60)
            state = status.json().get("state", "") if status.status_code == 200 else ""
        except requests.ConnectionError:  # QEMU resets while nothing listens inside
            state = ""
        if state != "idle":
            time.sleep(3)
    print(f"appliance.service restarted with the device, idle in "
          f"{time.monotonic() - restarted_at:.0f} s")  # fmt: skip
    _, journal = shell.run("journalctl -b -u appliance.service --no-pager -o cat "
                           "| grep -i 'gpio' | tail -5")  # fmt: skip
    assert "cannot" not in journal.lower(), journal

    for command, value in (("Turn on the porch light.", 1), ("Turn off the porch light.", 0)):
        asked = web.post(base + "/api/ask", json={"text": command}, headers=headers,
                         timeout=900)  # fmt: skip
        assert asked.status_code == 200, asked.text
        turn = asked.json()
        state = lines(shell)
        print(f"{command!r}: {turn['outcome']}, {turn['reply']!r}; lines {state}")
        assert "porch light" in turn["reply"].lower(), turn
        assert state["outputs"][PORCH_PIN] and state["values"][PORCH_PIN] == value, state
        others = [v for line, v in enumerate(state["values"]) if line != PORCH_PIN]
        assert others == [0] * 7, state


def check_the_camera_unplugged(shell: Any, web: requests.Session, base: str, csrf: str) -> None:
    """The camera taken away (vivid removed, as a USB camera unplugged): "read this" is
    answered with what is wrong (503, and the fix), nothing else stops; plugged back, the
    device is there again for the service."""
    rc, out = shell.run("modprobe -r vivid && echo unplugged")
    assert rc == 0 and "unplugged" in out, out
    look = web.post(base + "/api/vision", json={"capture": True, "question": "read this"},
                    headers={"X-CSRF-Token": csrf, "Connection": "close"}, timeout=300)  # fmt: skip
    assert look.status_code == 503, look.text
    assert "no camera found" in look.json()["detail"] and "Plug in" in look.json()["detail"]
    rc, out = shell.run("modprobe vivid && udevadm settle && stat -c %G /dev/video0")
    assert rc == 0 and out.strip() == "video", out
    status = web.get(base + "/api/status", headers={"Connection": "close"}, timeout=60)
    assert status.status_code == 200 and status.json()["state"] == "idle", status.text
