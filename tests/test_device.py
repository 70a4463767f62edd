"""The service side of the device: systemd notifications from a real `appliance run`, and
a full /data partition (the service keeps running and says why)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import events as ev
from appliance.config import default_models_dir
from appliance.device.notify import SystemdNotifier, service_notifications
from appliance.device.storage import check_writable
from tests.test_cli import _alsa_file_devices


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    yield str(path), sock
    sock.close()


def _drain(sock: socket.socket) -> list[str]:
    lines: list[str] = []
    while True:
        try:
            lines.extend(sock.recv(4096).decode().splitlines())
        except (TimeoutError, BlockingIOError):
            return lines


def _stop(proc: subprocess.Popen[str], sock: socket.socket, lines: list[str]) -> str:
    """SIGTERM, reading the notifications until it exits, as systemd does; its stderr."""
    proc.send_signal(signal.SIGTERM)
    stop_by = time.monotonic() + 30
    while time.monotonic() < stop_by and proc.poll() is None:
        lines += _drain(sock)
    _, err = proc.communicate(timeout=5)
    lines += _drain(sock)
    return err


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem with no space left: a 64 KiB tmpfs filled to the last byte."""
    mount = tmp_path / "data"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)]).returncode:
        pytest.fail("mounting a tmpfs needs root (the CI runs as root)")
    try:
        try:
            with open(mount / "filler", "wb", buffering=0) as handle:
                while True:
                    handle.write(b"\0" * 512)
        except OSError:
            pass  # ENOSPC: full
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_no_notify_socket_means_no_notifications():
    notifier = SystemdNotifier.from_environment({})
    assert not notifier.enabled
    assert notifier.watchdog_seconds is None
    assert notifier.ready("idle") is False


def test_watchdog_period_only_for_this_process():
    env = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "3000000"}
    assert SystemdNotifier.from_environment(env).watchdog_seconds == 3.0
    mine = {**env, "WATCHDOG_PID": str(os.getpid())}
    assert SystemdNotifier.from_environment(mine).watchdog_seconds == 3.0
    other = {**env, "WATCHDOG_PID": str(os.getpid() + 1)}
    assert SystemdNotifier.from_environment(other).watchdog_seconds is None


def test_abstract_socket_address():
    name = f"appliance-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2)
    try:
        notifier = SystemdNotifier(f"@{name}")
        assert notifier.ready("idle")
        assert server.recv(100).decode().splitlines() == ["READY=1", "STATUS=idle"]
        notifier.close()
    finally:
        server.close()


def test_unreachable_socket_is_reported_not_raised(tmp_path, caplog):
    notifier = SystemdNotifier(str(tmp_path / "nobody-listens"))
    assert notifier.watchdog() is False
    assert "cannot notify systemd" in caplog.text


def test_a_receiver_that_stops_reading_does_not_hang_the_event_loop(notify_socket):
    """The notifier runs on the event loop. A full queue (10 datagrams on Linux) drops
    watchdog pings at once and gives a status line at most SEND_TIMEOUT, never forever."""
    address, _ = notify_socket  # bound, never read
    notifier = SystemdNotifier(address)
    started = time.monotonic()
    pings = [notifier.watchdog() for _ in range(50)]
    assert pings[0] and not pings[-1]
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    assert notifier.stopping() is False
    assert 0.5 < time.monotonic() - started < 3
    notifier.close()


def test_notifications_follow_states_and_stop(notify_socket, tmp_path):
    address, sock = notify_socket
    notifier = SystemdNotifier(address, watchdog_seconds=0.1)
    bus = ev.EventBus()

    lines: list[str] = []

    async def main() -> None:
        async with service_notifications(notifier, bus, data_dir=tmp_path):
            bus.publish(ev.StateChanged(turn=1, stream_time=0.0, state="listening"))
            # Pings every 50 ms; on a loaded machine they may come late, never not at all.
            for _ in range(200):
                lines.extend(await asyncio.to_thread(_drain, sock))
                if lines.count("WATCHDOG=1") >= 3:
                    break

    asyncio.run(main())
    lines.extend(_drain(sock))
    assert lines[:2] == ["READY=1", "STATUS=idle"]
    assert "STATUS=listening" in lines
    assert lines.count("WATCHDOG=1") >= 3
    assert lines[-2:] == ["STOPPING=1", "STATUS=stopping"]


def test_full_data_dir_is_named_with_the_fix(full_dir):
    problem = check_writable(full_dir)
    assert problem and "data partition full" in problem and "appliance models remove" in problem
    # Even with no low-space margin, the write probe itself fails and says why.
    problem = check_writable(full_dir, low_space_bytes=0)
    assert problem and "no space left" in problem and "running read-only" in problem
    assert not list(full_dir.glob(".write-probe-*"))


def test_writable_dir_missing_dir_and_impossible_dir(tmp_path):
    assert check_writable(tmp_path) is None
    assert check_writable(tmp_path / "new" / "dir") is None
    assert (tmp_path / "new" / "dir").is_dir()
    (tmp_path / "file").write_text("")
    problem = check_writable(tmp_path / "file" / "data") or ""
    assert "cannot be created" in problem and "APPLIANCE_DATA_DIR" in problem


@pytest.mark.e2e
def test_run_under_systemd_notify_with_a_full_data_partition(notify_socket, full_dir, tmp_path):
    """A real `appliance run` as systemd would start it (Type=notify, WatchdogSec=1): READY=1
    after the models load, WATCHDOG=1 from its loop, STATUS= naming the full /data; it keeps
    answering, and SIGTERM stops it with STOPPING=1."""
    address, sock = notify_socket
    demo = Path(__file__).parents[1] / "appliance" / "samples" / "demo_request.wav"
    env = {
        **os.environ,
        **_alsa_file_devices(tmp_path, demo),
        "NOTIFY_SOCKET": address,
        "WATCHDOG_USEC": "1000000",
        "APPLIANCE_DATA_DIR": str(full_dir),
        # The models stay where setup.sh prepared them (they would be under the data dir).
        "APPLIANCE_MODELS_DIR": str(default_models_dir()),
    }
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--input-device", "testmic",
         "--output-device", "testspeaker", "--events", str(events), "--localhost-only"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            lines += _drain(sock)
            if (
                lines.count("WATCHDOG=1") >= 3
                and events.exists()
                and '"turn_end"' in events.read_text()
            ):
                break
        err = _stop(proc, sock, lines)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "READY=1" in lines, lines
    ready_status = lines[lines.index("READY=1") + 1]
    assert ready_status.startswith("STATUS=idle; data partition full"), ready_status
    assert lines.count("WATCHDOG=1") >= 3
    assert '"reply"' in events.read_text()  # it kept answering
    assert lines[-2:] == ["STOPPING=1", "STATUS=stopping"]
    assert "data partition full" in err


@pytest.mark.e2e
def test_run_under_systemd_notify(notify_socket, tmp_path):
    """A real `appliance run` as systemd starts it (Type=notify, WatchdogSec=1), with a
    writable data directory: READY=1 after loading, WATCHDOG=1 from its loop, STOPPING=1."""
    address, sock = notify_socket
    demo = Path(__file__).parents[1] / "appliance" / "samples" / "demo_request.wav"
    env = {
        **os.environ,
        **_alsa_file_devices(tmp_path, demo),
        "NOTIFY_SOCKET": address,
        "WATCHDOG_USEC": "1000000",
        "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_MODELS_DIR": str(default_models_dir()),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--input-device", "testmic",
         "--output-device", "testspeaker", "--localhost-only"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            lines += _drain(sock)
            if lines.count("WATCHDOG=1") >= 3:
                break
        err = _stop(proc, sock, lines)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert lines[lines.index("READY=1") + 1] == "STATUS=idle", lines
    assert lines.count("WATCHDOG=1") >= 3
    assert lines[-2:] == ["STOPPING=1", "STATUS=stopping"]
