"""First boot of a freshly flashed card (`appliance-firstboot.service`, as root).

Each step is tried in turn and recorded in `firstboot.json` in the data directory (the
config page shows it); a step that fails is logged with why and the next one still runs:
  1. grow the last partition (/data) and its filesystem to fill the card;
  2. a unique host name `appliance-XXXX` (from the machine id), for http://appliance-XXXX.local;
  3. no pairing code from the image: appliance.service makes this device's own at its
     first start, speaks it and writes it to the journal;
  4. new SSH host keys (the image must not share them between devices);
  5. Wi-Fi and settings from `appliance.txt` on the boot partition;
then the unit disables itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.device.settings_file import DeviceSettings, parse_settings, redacted
from appliance.device.setup_status import LATER_NAME, STATUS_NAME
from appliance.web.auth import PairingStore

_LOGGER = logging.getLogger("appliance.firstboot")
SETTINGS_NAME = "appliance.txt"
UNIT = "appliance-firstboot.service"


@dataclass(frozen=True)
class Step:
    name: str
    """grow_data, hostname, pairing, ssh_keys, settings or disable."""
    ok: bool
    """False when the step failed; the boot went on regardless."""
    message: str
    """What was done, or what went wrong and how to fix it."""


@dataclass(frozen=True)
class Paths:
    root: Path
    """The system's root (/ on the device, a temporary tree in tests)."""
    boot: Path
    """The FAT boot partition, where the user puts appliance.txt."""
    data: Path
    """The appliance's data directory on /data."""


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def grow_data(paths: Paths) -> str:
    mount = _run("findmnt", "-no", "SOURCE", "--target", str(paths.data)).stdout.strip()
    if not mount.startswith("/dev/"):
        raise RuntimeError(f"cannot find the partition under {paths.data} (findmnt: {mount!r})")
    name = Path(mount).name
    part_file = Path("/sys/class/block") / name / "partition"
    if not part_file.exists():
        raise RuntimeError(f"{mount} is not a partition")
    number = part_file.read_text().strip()
    disk = "/dev/" + Path(os.path.realpath(f"/sys/class/block/{name}/..")).name
    grow = _run("growpart", disk, number)
    # growpart: 0 grown, 1 with NOCHANGE = already fills the disk, else an error.
    if grow.returncode not in (0, 1) or (grow.returncode == 1 and "NOCHANGE" not in grow.stdout):
        raise RuntimeError(f"growpart {disk} {number}: {(grow.stderr or grow.stdout).strip()}")
    resize = _run("resize2fs", mount)
    if resize.returncode != 0:
        raise RuntimeError(f"resize2fs {mount}: {resize.stderr.strip()}")
    size = shutil.disk_usage(paths.data).total
    return f"{mount} ({disk} partition {number}) fills the card: {size / 2**30:.1f} GiB"


def generated_hostname(root: Path) -> str:
    machine_id = (root / "etc/machine-id").read_text().strip()
    if len(machine_id) < 4 or machine_id == "uninitialized":
        raise RuntimeError("/etc/machine-id is not set yet")
    return f"appliance-{machine_id[:4]}"


def set_hostname(root: Path, name: str, *, live: bool) -> str:
    (root / "etc/hostname").write_text(name + "\n")
    hosts = root / "etc/hosts"
    lines = [ln for ln in hosts.read_text().splitlines() if not ln.startswith("127.0.1.1")]
    lines.insert(1 if lines else 0, f"127.0.1.1\t{name}")
    hosts.write_text("\n".join(lines) + "\n")
    if live:  # the syscall, not /proc/sys: the unit keeps /proc/sys read-only
        socket.sethostname(name)
    return f"host name {name}: http://{name}.local"


def pairing_state(data: Path) -> Path:
    """Where the service keeps the pairing code's hash, sessions and tokens."""
    return PairingStore(data / "web").path


WHERE_THE_CODE_IS = (
    "appliance.service makes this device's pairing code at its first start, speaks it and "
    "writes it to the journal (journalctl -u appliance | grep 'pairing code')"
)


def pairing(paths: Paths) -> str:
    """Every card made from an image must have its own code, and its user must be able to
    learn it: the service makes it (spoken, and in the journal) when it finds none. A code
    made here would reach no one, so this step only removes one the image carried."""
    state = pairing_state(paths.data)
    if state.exists():
        state.unlink()
        return f"removed the pairing state the image carried ({state}); {WHERE_THE_CODE_IS}"
    return WHERE_THE_CODE_IS


def ssh_keys(root: Path) -> str:
    if not (root / "usr/sbin/sshd").exists():
        return "no SSH server in this image"
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    made = _run("ssh-keygen", "-A")
    if made.returncode != 0:
        raise RuntimeError(f"ssh-keygen -A: {made.stderr.strip()}")
    return "new SSH host keys generated"


def apply_settings(paths: Paths, settings: DeviceSettings, *, live: bool) -> list[str]:
    """Write what the settings file asked for; returns what was applied."""
    applied = []
    root = paths.root
    if settings.wifi is not None:
        conf = root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        tmp = conf.with_suffix(".tmp")
        tmp.write_text(settings.wifi.wpa_supplicant_conf())
        tmp.chmod(0o600)
        tmp.replace(conf)
        _enable("wpa_supplicant@wlan0.service", root, live=live)
        applied.append(f"Wi-Fi {settings.wifi.ssid!r} ({settings.wifi.country})")
    if settings.hostname:
        set_hostname(root, settings.hostname, live=live)
        applied.append(f"host name {settings.hostname}")
    if settings.timezone:
        localtime = root / "etc/localtime"
        localtime.unlink(missing_ok=True)
        localtime.symlink_to(Path("/usr/share/zoneinfo") / settings.timezone)
        (root / "etc/timezone").write_text(settings.timezone + "\n")
        applied.append(f"time zone {settings.timezone}")
    if settings.ssh:
        keys = root / "root/.ssh/authorized_keys"
        keys.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys.write_text(settings.ssh_authorized_key + "\n")
        keys.chmod(0o600)
        _enable("ssh.service", root, live=live)
        applied.append("SSH on (key login as root)")
    return applied


def _enable(unit: str, root: Path, *, live: bool) -> None:
    if not live:
        # What `systemctl enable` does for a WantedBy=multi-user.target unit, on a tree.
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        template = re.sub(r"@[^.]*\.", "@.", unit)
        link = wants / unit
        link.unlink(missing_ok=True)
        link.symlink_to(Path("/lib/systemd/system") / template)
        return
    done = _run("systemctl", "enable", "--now", "--no-block", unit)
    if done.returncode != 0:
        raise RuntimeError(f"systemctl enable {unit}: {done.stderr.strip()}")


def import_settings(paths: Paths, *, live: bool) -> tuple[Step, dict[str, object]]:
    source = paths.boot / SETTINGS_NAME
    record: dict[str, object] = {"file": str(source), "found": False, "applied": [], "problems": []}
    if not source.exists():
        msg = f"no {SETTINGS_NAME} on the boot partition: wired network only, defaults kept"
        return Step("settings", True, msg), record
    record["found"] = True
    try:
        text = source.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        record["problems"] = [f"cannot read {SETTINGS_NAME}: {err}; save it as plain UTF-8 text"]
        return Step("settings", False, str(record["problems"][0])), record  # type: ignore[index]
    settings = parse_settings(text, zoneinfo=paths.root / "usr/share/zoneinfo")
    problems = list(settings.problems)
    applied: list[str] = []
    try:
        applied = apply_settings(paths, settings, live=live)
    except (OSError, RuntimeError) as err:
        problems.append(f"applying the settings failed: {err}")
    # Keep a record without the passphrase; the original (with it) goes.
    try:
        (paths.boot / "appliance-imported.txt").write_text(redacted(text))
        source.unlink()
    except OSError as err:
        problems.append(f"could not remove the Wi-Fi passphrase from the boot partition: {err}")
    record["applied"], record["problems"] = applied, problems
    summary = "applied: " + (", ".join(applied) or "nothing")
    if problems:
        summary += "; problems: " + " | ".join(problems)
    return Step("settings", not problems, summary), record


def write_status(
    paths: Paths, steps: list[Step], settings: dict[str, object], *, name: str = STATUS_NAME
) -> Path:
    status = {
        "finished_at": time.time(),
        "ok": all(step.ok for step in steps),
        "steps": [dataclasses.asdict(step) for step in steps],
        "settings_file": settings,
    }
    paths.data.mkdir(parents=True, exist_ok=True)
    target = paths.data / name
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=2) + "\n")
    tmp.replace(target)
    try:
        shutil.chown(target, "appliance", "appliance")
    except (LookupError, OSError):
        pass
    return target


def run(paths: Paths, *, live: bool) -> list[Step]:
    steps: list[Step] = []
    settings_record: dict[str, object] = {}

    def attempt(name: str, action: Callable[[], str]) -> None:
        try:
            step = Step(name, True, action())
        except Exception as err:  # every step is independent: record and go on
            step = Step(name, False, f"{type(err).__name__}: {err}")
        (_LOGGER.info if step.ok else _LOGGER.error)("%s: %s", name, step.message)
        steps.append(step)

    if live:
        attempt("grow_data", lambda: grow_data(paths))
    attempt(
        "hostname",
        lambda: set_hostname(paths.root, generated_hostname(paths.root), live=live),
    )
    attempt("pairing", lambda: pairing(paths))
    if live:
        attempt("ssh_keys", lambda: ssh_keys(paths.root))
    step, settings_record = import_settings(paths, live=live)
    (_LOGGER.info if step.ok else _LOGGER.error)("settings: %s", step.message)
    steps.append(step)
    if live:
        attempt("disable", lambda: _disable())
    try:
        where = write_status(paths, steps, settings_record)
        _LOGGER.info("status written to %s", where)
    except OSError as err:
        _LOGGER.error("cannot write the first-boot status to %s: %s", paths.data, err)
    return steps


def _disable() -> str:
    done = _run("systemctl", "disable", UNIT)
    if done.returncode != 0:
        raise RuntimeError(f"systemctl disable {UNIT}: {done.stderr.strip()}")
    return f"{UNIT} disabled: it will not run again"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="appliance-firstboot", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("/"))
    parser.add_argument("--boot", type=Path, default=Path("/boot/firmware"))
    parser.add_argument("--data", type=Path, default=Path("/data/appliance"))
    parser.add_argument(
        "--offline",
        action="store_true",
        help="only the file steps, on --root (no partitions, no systemctl on the live system)",
    )
    parser.add_argument(
        "--settings-only",
        action="store_true",
        help="only import appliance.txt (a new one put on the card after the first boot)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="firstboot: %(message)s", stream=sys.stdout)
    paths = Paths(args.root, args.boot, args.data)
    if args.settings_only:
        step, record = import_settings(paths, live=not args.offline)
        _LOGGER.info("settings: %s", step.message)
        write_status(paths, [step], record, name=LATER_NAME)
        return 0
    steps = run(paths, live=not args.offline)
    # Failed steps are recorded for the page; the boot itself must go on, so always 0.
    _LOGGER.info("%d of %d steps ok", sum(s.ok for s in steps), len(steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
