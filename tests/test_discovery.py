"""mDNS for real, inside a network namespace this test creates (never on a real
interface): one process announces, another browses, as on a LAN."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to create a network namespace (ip netns add)",
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def netns():
    name = f"apltest{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    _ip("netns", "add", name)
    try:
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "multicast", "on")
        _ip("netns", "exec", name, "ip", "route", "add", "224.0.0.0/4", "dev", "lo")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


class Lines:
    """A subprocess in the namespace whose stdout JSON lines are read as they come."""

    def __init__(self, netns: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-m", "appliance.discovery", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, timeout: float = 30.0, **match: object) -> dict:
        """The next line matching; the timeout is generous because a process start on a
        loaded 2-core machine can take seconds (this is not a timing test)."""
        deadline = time.monotonic() + timeout
        other = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if all(item.get(k) == v for k, v in match.items()):
                return item
            other.append(item)
        raise AssertionError(f"no line matching {match}; got {other} (stderr: {self.stderr()})")

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def browse(netns: str, kind: str = "own", expect: int = 1) -> list[dict]:
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "appliance.discovery", "browse",
         "--type", kind, "--timeout", "6", "--expect", str(expect)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_announced_with_address_port_and_txt_then_goodbye_on_close(netns):
    watcher = Lines(netns, "browse", "--watch", "--timeout", "30")
    time.sleep(0.5)
    advertiser = Lines(netns, "advertise", "--name", "kitchen", "--port", "8080")
    try:
        assert advertiser.next(announced="kitchen")["addresses"] == ["127.0.0.1"]
        [found] = browse(netns)
        assert found["name"] == "kitchen"
        assert found["addresses"] == ["127.0.0.1"] and found["port"] == 8080
        assert found["server"] == "kitchen.local."
        assert found["txt"] == {"version": "0.1.0", "name": "kitchen", "path": "/", "api": "1"}
        [http] = browse(netns, "http")
        assert http["name"] == "kitchen" and http["port"] == 8080
        assert watcher.next(event="added")["name"] == "kitchen"
        advertiser.stop()
        advertiser.next(closed=True)
        # The goodbye packets remove it from a live browser at once (not after the TTL).
        started = time.monotonic()
        assert watcher.next(timeout=10, event="removed")["name"] == "kitchen"
        assert time.monotonic() - started < 10  # the record's TTL is 75 minutes
    finally:
        advertiser.stop()
        watcher.stop()


def test_a_taken_name_is_renamed(netns):
    first = Lines(netns, "advertise", "--name", "kitchen", "--port", "8080")
    second = None
    try:
        first.next(announced="kitchen")
        second = Lines(netns, "advertise", "--name", "kitchen", "--port", "8081")
        second.next(announced="kitchen (2)")
        found = {s["name"]: s for s in browse(netns, expect=2)}
        assert set(found) == {"kitchen", "kitchen (2)"}
        assert found["kitchen (2)"]["port"] == 8081
        assert found["kitchen (2)"]["txt"]["name"] == "kitchen (2)"
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_an_address_change_is_announced_again(netns):
    advertiser = Lines(netns, "advertise", "--name", "hall", "--port", "80",
                       "--poll-seconds", "0.5")  # fmt: skip
    try:
        advertiser.next(announced="hall")
        _ip("netns", "exec", netns, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo")
        deadline = time.monotonic() + 15
        addresses: list[str] = []
        while time.monotonic() < deadline:
            found = browse(netns)
            addresses = found[0]["addresses"] if found else []
            if "127.0.0.2" in addresses:
                break
        assert sorted(addresses) == ["127.0.0.1", "127.0.0.2"]
    finally:
        advertiser.stop()


_SATELLITE = """
import asyncio, sys
from appliance.audio.volume import Volume
from appliance.config import AppConfig
from appliance.satellite.build import satellite_for
from appliance.sections.satellite import SatelliteConfig
from appliance.sections.web import WebConfig
from tests.fakes import make_pipeline

async def main():
    pipeline, *_ = make_pipeline([], [])
    config = AppConfig(
        satellite=SatelliteConfig(enabled=True, port=0, encryption_key=sys.argv[1]),
        web=WebConfig(device_name="Hall Speaker"),
    )
    server = satellite_for(config, pipeline, pipeline.bus, wake_threshold=lambda: 0.5,
                           set_wake_threshold=lambda value: True, volume=Volume(),
                           sample_rate=16000)
    async with server:
        print(server.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

_CLIENT = """
import asyncio, sys
from aioesphomeapi import APIClient

async def main():
    client = APIClient(sys.argv[1], int(sys.argv[2]), None, noise_psk=sys.argv[3])
    await asyncio.wait_for(client.connect(login=True), 10)
    print((await client.device_info()).friendly_name, flush=True)
    await client.disconnect()

asyncio.run(main())
"""


def test_the_satellite_is_announced_for_home_assistant_and_reached_there(netns):
    key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    satellite = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", _SATELLITE, key],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        port = int(satellite.stdout.readline())
        [found] = browse(netns, "esphome")
        assert found["name"] == "hall-speaker" and found["port"] == port
        assert found["server"] == "hall-speaker.local."
        txt = found["txt"]
        assert txt["friendly_name"] == "Hall Speaker" and len(txt["mac"]) == 12
        assert txt["api_encryption"] == "Noise_NNpsk0_25519_ChaChaPoly_SHA256"
        client = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", _CLIENT,
             found["addresses"][0], str(found["port"]), key],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == "Hall Speaker"
    finally:
        satellite.stdin.close()
        try:
            satellite.wait(timeout=15)
        except subprocess.TimeoutExpired:
            satellite.kill()


_DESCRIBE = """
import sys
from appliance.transport.wyoming import Address, missing
where = Address(sys.argv[1], int(sys.argv[2]))
print([missing(where, kind, timeout=5) for kind in ("asr", "tts", "wake")], flush=True)
"""


@pytest.mark.e2e
def test_serve_wyoming_is_announced_as_wyoming_and_described_there(netns, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[web]\ndevice_name = "Attic Box"\n')
    server = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "appliance", "--config",
         str(config), "serve-wyoming", "--port", "10300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "Wyoming speech-to-text" in server.stdout.readline()
        [found] = browse(netns, "wyoming")
        assert found["name"] == "Attic Box" and found["port"] == 10300
        described = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", _DESCRIBE,
             found["addresses"][0], str(found["port"])],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert described.stdout.strip() == "[None, None, None]", described.stderr
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
