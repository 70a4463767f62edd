"""Crash consistency: the appliance's state writers SIGKILLed at random moments, 200 times,
and nothing acknowledged lost, nothing half-written.

tests/crash_driver.py runs, in a forked child, what the appliance does to keep its state (a
settings save, timers set, cancelled and fired, audit entries, MQTT messages queued with
the broker away), through the same classes, and acknowledges each change on stdout once
the call returned. After each kill the data directory is opened as the next start would
open it:

- the config file and its backup load, and the config is the last acknowledged save or
  the one being written when the kill came: never a mix, never the defaults;
- every acknowledged timer is there, in the acknowledged state (or a later one);
- every acknowledged audit entry and queued message is there; the databases pass
  SQLite's integrity check.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

from appliance.config import load_config
from tests import crash_driver

KILLS = 200


def _killed_after(seconds: float, data: Path, seed: int) -> str:
    """Run the driver in a forked child (its imports done once, here) and SIGKILL it
    after `seconds`: what it acknowledged."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write acknowledgements into the pipe until killed
        try:
            os.close(read)
            sys.stdout = os.fdopen(write, "w")
            crash_driver.main(data, seed)
        finally:
            os._exit(1)
    os.close(write)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(read, 65536), b"")))
    reader.start()
    time.sleep(seconds)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    reader.join(timeout=30)
    os.close(read)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    return b"".join(chunks).decode()


def _rows(path: Path, query: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",), path
        return db.execute(query).fetchall()
    finally:
        db.close()


def test_200_kills_lose_nothing_acknowledged(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text('[llm]\nsystem_prompt = "prompt 0"\n')
    rng = random.Random(20261208)
    saved_prompts = {"prompt 0"}
    timers: dict[int, str] = {}  # acknowledged id → state
    audit: set[str] = set()
    queued: set[bytes] = set()
    losses: list[str] = []
    acknowledged = 0
    started = time.monotonic()
    for kill in range(1, KILLS + 1):
        out = _killed_after(rng.uniform(0.02, 0.3), data, kill)
        last_config = None
        for line in out.splitlines():
            words = line.split()
            if len(words) < 3 or words[0] != "ack":
                continue  # the line being written when the kill came
            acknowledged += 1
            kind = words[1]
            if kind == "config":
                last_config = f"prompt {words[2]}"
                saved_prompts.add(last_config)
            elif kind == "timer":
                timers[int(words[2])] = "running"
            elif kind == "finish":
                timers[int(words[2])] = words[3]
            elif kind == "audit":
                audit.add(f"said {words[2]}")
            elif kind == "outbox":
                queued.add(f"m{words[2]}".encode())

        # What the next start finds.
        config = load_config(data / "config.toml")  # raises on a half-written file
        prompt = config.llm.system_prompt
        if prompt not in saved_prompts and not prompt.startswith("prompt "):
            losses.append(f"kill {kill}: the config is neither saved nor being saved: {prompt!r}")
        if last_config is not None and prompt != last_config:
            # Only the save after the last acknowledged one may have landed.
            after = int(prompt.split()[1]) if prompt.startswith("prompt ") else -1
            if after <= int(last_config.split()[1]):
                losses.append(f"kill {kill}: acknowledged {last_config!r}, found {prompt!r}")
        backup = data / "config.toml.bak"
        if backup.exists():
            load_config(backup)  # the last good state is whole too
        states = dict(_rows(data / "timers.sqlite3", "SELECT id, state FROM timers"))
        for timer_id, state in timers.items():
            if timer_id not in states:
                losses.append(f"kill {kill}: acknowledged timer {timer_id} is gone")
            elif state != "running" and states[timer_id] != state:
                losses.append(f"kill {kill}: timer {timer_id} {state}, found {states[timer_id]}")
            elif state == "running" and states[timer_id] not in ("running", "cancelled", "fired"):
                losses.append(f"kill {kill}: timer {timer_id} in state {states[timer_id]}")
        for timer_id, state in states.items():
            timers.setdefault(timer_id, state)  # set, not yet acknowledged: kept since
        found = {row[0] for row in _rows(data / "audit.sqlite3", "SELECT transcript FROM actions")}
        losses += [f"kill {kill}: audit entry {a!r} is gone" for a in sorted(audit - found)]
        messages = {row[0] for row in _rows(data / "mqtt-outbox.sqlite3",
                                            "SELECT payload FROM outbox")}  # fmt: skip
        losses += [f"kill {kill}: queued message {m!r} is gone" for m in sorted(queued - messages)]
    seconds = time.monotonic() - started
    print(f"\n{KILLS} kills, {len(losses)} losses ({acknowledged} acknowledged changes: "
          f"{len(saved_prompts) - 1} config saves, {len(timers)} timers, {len(audit)} audit "
          f"entries, {len(queued)} queued messages) in {seconds:.0f} s")  # fmt: skip
    assert not losses, "\n".join(losses[:20])
    assert len(saved_prompts) > 20 and len(timers) > 20 and len(audit) > 20 and len(queued) > 20
