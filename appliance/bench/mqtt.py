"""MQTT figures: what the persistent outbox costs, against a broker you name.

    python -m appliance.bench.mqtt --port 1883 [--host 127.0.0.1] [--messages 500]

- publish latency: `MqttLink.publish` → the message at a separate subscriber (outbox
  write, SQLite commit, QoS 1 publish, broker, delivery), one message at a time;
- backlog drain: messages queued while the link was not connected, then delivered;
- outbox store: messages written to SQLite per second (batches of 50).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt

from appliance.mqtt.link import MqttLink
from appliance.mqtt.outbox import Outbox, OutMessage
from appliance.sections.mqtt import MqttConfig

TOPIC = "appliance/bench/latency"


async def measure(host: str, port: int, messages: int, folder: Path) -> dict[str, Any]:
    config = MqttConfig(host=host, port=port, device_name="bench", client_id="appliance-bench")
    figures: dict[str, Any] = {"messages": messages}

    outbox = Outbox(folder / "store.sqlite3", messages * 2)
    batch = [OutMessage(TOPIC, b"x" * 64) for _ in range(50)]
    started = time.perf_counter()
    for _ in range(max(1, messages // 50)):
        outbox.put(batch)
    figures["outbox_store_per_s"] = round(
        max(1, messages // 50) * 50 / (time.perf_counter() - started)
    )
    outbox.close()

    outbox = Outbox(folder / "link.sqlite3", messages * 2)
    link = MqttLink(config, outbox)
    arrived: asyncio.Queue[float] = asyncio.Queue()
    async with aiomqtt.Client(host, port, identifier="appliance-bench-sub") as subscriber:
        await subscriber.subscribe(f"{TOPIC}/#", qos=1)

        async def read() -> None:
            async for _ in subscriber.messages:
                arrived.put_nowait(time.perf_counter())

        reader = asyncio.create_task(read())
        # The backlog: queued before the link connects, delivered when it does.
        for i in range(messages):
            link.publish(f"{TOPIC}/backlog", str(i))
        started = time.perf_counter()
        runner = asyncio.create_task(link.run())
        for _ in range(messages):
            last = await asyncio.wait_for(arrived.get(), 30)
        figures["backlog_drain_per_s"] = round(messages / (last - started))
        latencies = []
        for i in range(min(messages, 200)):
            sent = time.perf_counter()
            link.publish(TOPIC, str(i))
            latencies.append((await asyncio.wait_for(arrived.get(), 10)) - sent)
        latencies.sort()
        figures["publish_latency_median_ms"] = round(statistics.median(latencies) * 1000, 2)
        figures["publish_latency_p95_ms"] = round(
            latencies[int(0.95 * (len(latencies) - 1))] * 1000, 2
        )
        runner.cancel()
        reader.cancel()
        for task in (runner, reader):
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
    outbox.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appliance.bench.mqtt", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        figures = asyncio.run(measure(args.host, args.port, args.messages, Path(folder)))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
