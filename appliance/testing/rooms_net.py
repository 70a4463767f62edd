"""Three boxes in three network namespaces on one bridge (10.77.0.1–3), each a process
running the real wake word detector and room arbiter (`rooms_trial`), for the test and
the bench. Needs root and iproute2; traffic stays inside the namespaces."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GAINS = {"kitchen": 1.0, "hall": 0.55, "office": 0.3}
"""Each room's level of the same recording: the kitchen is nearest."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def namespaces(rooms: list[str]) -> Iterator[dict[str, str]]:
    """room → namespace, each with 10.77.0.N on a veth to one bridge, multicast routed."""
    tag = f"r{os.getpid() % 100000}"
    hub, names = f"{tag}hub", {room: f"{tag}{i}" for i, room in enumerate(rooms)}
    for ns in (hub, *names.values()):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    try:
        _ip("netns", "add", hub)
        # A plain switch: multicast goes to every port (no IGMP snooping, which without
        # a querier on the network learns members late and drops their first datagrams).
        _ip("-n", hub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        _ip("-n", hub, "link", "set", "br0", "up")
        for index, ns in enumerate(names.values(), start=1):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "add", f"{tag}v{index}", "netns", ns, "type", "veth",
                "peer", "name", f"{tag}p{index}", "netns", hub)  # fmt: skip
            _ip("-n", hub, "link", "set", f"{tag}p{index}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"10.77.0.{index}/24", "dev", f"{tag}v{index}")
            _ip("-n", ns, "link", "set", f"{tag}v{index}", "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", f"{tag}v{index}")
        yield names
    finally:
        for ns in (*names.values(), hub):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def run_trials(wav: Path, trials: int, gains: dict[str, float] = GAINS) -> dict[str, Any]:
    """`trials` times, every box hears `wav` at once at its gain; who answered, each time."""
    with namespaces(list(gains)) as rooms:
        boxes = {}
        for index, (room, ns) in enumerate(rooms.items(), start=1):
            boxes[room] = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "appliance.testing.rooms_trial",
                 "--name", room, "--gain", str(gains[room]), "--wav", str(wav),
                 "--interface", f"10.77.0.{index}"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
        rows = []
        try:
            for proc in boxes.values():
                assert proc.stdout is not None
                if not json.loads(proc.stdout.readline()).get("ready"):
                    raise RuntimeError("a box did not start")
            time.sleep(1.0)  # the hellos go round
            for _ in range(trials):
                start = time.time() + 0.2
                for proc in boxes.values():
                    assert proc.stdin is not None
                    proc.stdin.write(f"go {start}\n")
                    proc.stdin.flush()
                rows.append({room: json.loads(proc.stdout.readline())  # type: ignore[union-attr]
                             for room, proc in boxes.items()})  # fmt: skip
        finally:
            for proc in boxes.values():
                with contextlib.suppress(OSError):
                    assert proc.stdin is not None
                    proc.stdin.write("quit\n")
                    proc.stdin.close()
                proc.wait(10)
    nearest = max(gains, key=lambda room: gains[room])
    waited = [row["waited_ms"] for trial in rows for row in trial.values() if row.get("heard")]
    return {
        "trials": trials,
        "only_the_nearest_answered": sum(
            [room for room, row in trial.items() if row.get("won")] == [nearest] for trial in rows
        ),
        "heard": {room: sum(t[room]["heard"] for t in rows) for room in gains},
        "level_db": {
            room: statistics.median(t[room]["level_db"] for t in rows if t[room]["heard"])
            for room in gains
        },  # fmt: skip
        "waited_median_ms": statistics.median(waited) if waited else None,
        "waited_max_ms": max(waited) if waited else None,
        "window_ms": 150.0,
        "rows": rows,
    }
