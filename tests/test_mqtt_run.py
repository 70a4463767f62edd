"""`appliance run` with `[mqtt]`: the real engines answer the demo recording from a
microphone (ALSA's file plugin), the state and the transcript arrive at a separate
subscriber on a real mosquitto, a `say` command sent over MQTT is spoken, and SIGINT
leaves "offline" behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import default_models_dir
from tests.mqtt_broker import Mosquitto, subscriber
from tests.test_cli import _alsa_file_devices

BASE = "appliance/hall"


@pytest.mark.e2e
def test_run_publishes_its_state_and_speaks_what_mqtt_says(tmp_path: Path):
    broker = Mosquitto(tmp_path / "broker").start()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ndevice_name = "Hall"\n'
        "publish_transcripts = true\nreconnect_min_seconds = 0.1\n"
    )
    demo = Path(__file__).parents[1] / "appliance" / "samples" / "demo_request.wav"
    env = {
        **os.environ,
        **_alsa_file_devices(tmp_path, demo),
        "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_MODELS_DIR": str(default_models_dir()),  # not under the new data dir
    }
    events = tmp_path / "events.jsonl"

    log = open(tmp_path / "stderr.log", "wb")  # noqa: SIM115 - closed after the run

    async def main() -> tuple[int, str]:
        async with subscriber(broker.port, f"{BASE}/#") as (client, seen):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "appliance", "--config", str(config), "run",
                "--input-device", "testmic", "--output-device", "testspeaker",
                "--events", str(events), "--localhost-only",
                "--no-web",  # no first-start pairing code spoken
                env=env, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
            try:
                await seen.wait_for(
                    lambda s: bool(s.on(f"{BASE}/reply")) or proc.returncode is not None, 120
                )
                assert proc.returncode is None, (tmp_path / "stderr.log").read_text()
                await seen.wait_for(lambda s: s.on(f"{BASE}/state")[-1:] == ["idle"], 60)
                # The reply already left [..., "speaking", "idle"]: wait for a new pair.
                before = len(seen.on(f"{BASE}/state"))
                await client.publish(f"{BASE}/command/say", "The washing is done.", qos=1)
                await seen.wait_for(
                    lambda s: s.on(f"{BASE}/state")[before:][-2:] == ["speaking", "idle"]
                )
                proc.send_signal(signal.SIGINT)
                async with asyncio.timeout(30):
                    await proc.wait()
                await seen.wait_for(lambda s: s.on(f"{BASE}/availability")[-1:] == ["offline"])
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        assert seen.on(f"{BASE}/availability")[0] == "online"
        assert "capital" in seen.on(f"{BASE}/transcript")[-1].lower()
        states = seen.on(f"{BASE}/state")
        assert {"listening", "thinking", "speaking"} <= set(states)
        return proc.returncode or 0

    try:
        code = asyncio.run(main())
    finally:
        broker.stop()
        log.close()
        print((tmp_path / "stderr.log").read_text())
    err = (tmp_path / "stderr.log").read_text()
    assert code == 130, err
    kinds = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["text"] for e in kinds if e["type"] == "announcement"] == ["The washing is done."]
    assert "Traceback" not in err
    assert (tmp_path / "data" / "mqtt-outbox.sqlite3").exists()
