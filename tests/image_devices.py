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
import re
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


def allow_the_test_routes(disk: Path, offset: int, work: Path) -> None:
    """APPLIANCE_TEST_ENDPOINTS=1 for the service (web/debug.py: hang the event loop)."""
    write_into_root(disk, offset, {
        "/etc/systemd/system/appliance.service.d/test-endpoints.conf":
            "[Service]\nEnvironment=APPLIANCE_TEST_ENDPOINTS=1\n",
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


def wait_until_idle(web: requests.Session, base: str, timeout: float = 900) -> None:
    """Active is READY=1; the page and the engines follow: wait for an idle state."""
    deadline = time.monotonic() + timeout
    state = ""
    while state != "idle":
        assert time.monotonic() < deadline, f"not idle {timeout:.0f} s after the restart: {state}"
        try:
            status = web.get(base + "/api/status", headers={"Connection": "close"}, timeout=60)
            state = status.json().get("state", "") if status.status_code == 200 else ""
        except requests.RequestException:  # QEMU resets while nothing listens inside
            state = ""
        if state != "idle":
            time.sleep(3)


def lines(shell: Any) -> dict[str, list[Any]]:
    rc, text = shell.run(f"cat {LINES}")
    assert rc == 0, text
    return json.loads(text)


def add_a_light_on_the_page(shell: Any, web: requests.Session, base: str, csrf: str) -> None:
    """A light on line 3 of the bridge, added through the config page's API: saved, to
    take effect at the next start (the pins are claimed at start)."""
    before = lines(shell)
    assert before["values"] == [0] * 8, before
    config = web.get(base + "/api/config", timeout=60).json()
    saved = web.put(base + "/api/config", timeout=60,
                    headers={"X-CSRF-Token": csrf, "Connection": "close"}, json={
        "version": config["version"], "settings": {},
        "devices": [{"name": "porch light", "kind": "light", "gpio": {"pin": PORCH_PIN}}],
    })  # fmt: skip
    assert saved.status_code == 200, saved.text
    assert any("restarts" in line for line in saved.json()["restart"]), saved.json()


def check_the_light_switches(shell: Any, web: requests.Session, base: str, csrf: str) -> None:
    """After a start with the light configured: "turn on the porch light" through the API
    drives line 3 high, as the bridge sees it, and "turn it off" low, the other lines
    untouched; the service, hardened, runs as its own user throughout."""
    headers = {"X-CSRF-Token": csrf, "Connection": "close"}
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


def check_the_watchdog(shell: Any, web: requests.Session, base: str, csrf: str) -> None:
    """The event loop blocked on purpose (as a deadlock would block it): past WatchdogSec
    systemd kills the service and starts it again, which comes back with its timer (and
    with what was saved for the next start)."""
    headers = {"X-CSRF-Token": csrf, "Connection": "close"}
    timer = web.post(base + "/api/ask", json={"text": "Set a timer for 30 minutes."},
                     headers=headers, timeout=900)  # fmt: skip
    said = timer.json()["reply"].lower() if timer.status_code == 200 else timer.text
    assert "thirty minutes" in said or "30 minutes" in said, said
    _, before = shell.run("systemctl show appliance.service -p NRestarts --value")
    hung_at = time.monotonic()
    try:
        web.post(base + "/api/debug/hang", json={"seconds": 300}, headers=headers, timeout=280)
    except requests.RequestException:
        pass  # the process was killed under the request
    else:
        raise AssertionError("the hang returned: systemd's watchdog did not act")
    deadline = time.monotonic() + 300
    restarts = before
    while restarts.strip() == before.strip():
        assert time.monotonic() < deadline, "no restart 300 s after the event loop hung"
        time.sleep(3)
        _, restarts = shell.run("systemctl show appliance.service -p NRestarts --value")
    killed_at = time.monotonic() - hung_at
    _, journal = shell.run("journalctl -b -u appliance.service --no-pager -o cat "
                           "| grep -i 'watchdog timeout'")  # fmt: skip
    assert "Watchdog timeout" in journal, journal
    wait_until_idle(web, base)
    left = web.post(base + "/api/ask", json={"text": "How much time is left on the timer?"},
                    headers=headers, timeout=900)  # fmt: skip
    assert left.status_code == 200, left.text
    reply = left.json()["reply"]
    print(f"watchdog: hung, restarted after {killed_at:.0f} s, idle after "
          f"{time.monotonic() - hung_at:.0f} s; the timer: {reply!r}")  # fmt: skip
    # e.g. "Twenty eight minutes and forty one seconds left on the thirty minute timer."
    assert re.search(r"(?i)^(twenty|thirty|2\d|30)\b.*\bminutes?\b.*\bleft on the", reply), reply
