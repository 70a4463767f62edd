"""MQTT-backed devices: config validation, commands on a real broker, state followed from
the state topic."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from appliance.errors import ConfigError
from appliance.mqtt.device import MqttDevice, MqttDevices, parse_mqtt_device
from appliance.mqtt.link import MqttLink
from appliance.mqtt.outbox import Outbox
from tests.mqtt_broker import Mosquitto, subscriber
from tests.test_mqtt_link import config, until


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("zigbee/porch", "must be a table"),
        ({}, "command_topic is missing"),
        ({"command_topic": "porch/set", "colour": "red"}, "unknown setting(s) colour"),
        ({"command_topic": "porch/#"}, "wildcards"),
        ({"command_topic": ""}, "must not be empty"),
        ({"command_topic": "porch/set", "state_topic": 5}, "state_topic must be a string"),
        ({"command_topic": "p/set", "payload_on": "X", "payload_off": "X"}, "two different"),
        ({"command_topic": "p/set", "brightness_topic": "p/b", "brightness_scale": 0}, "1–65535"),
        ({"command_topic": "p/set", "brightness_scale": 100}, "without brightness_topic"),
        ({"command_topic": "p/set", "brightness_topic": "p/b", "brightness_scale": True}, "whole"),
    ],
)
def test_bad_device_tables_are_refused_with_the_device_and_key(table, message):
    with pytest.raises(ConfigError) as err:
        parse_mqtt_device("porch light", table)
    assert message in str(err.value) and "porch light" in str(err.value)


def test_commands_are_published_and_state_is_followed(tmp_path: Path):
    broker = Mosquitto(tmp_path / "broker").start()
    outbox = Outbox(tmp_path / "o.sqlite3", 100)
    link = MqttLink(config(broker.port), outbox)
    factory = MqttDevices(link).make_mqtt_backend
    porch = factory(
        "porch light",
        {
            "command_topic": "z2m/porch/set",
            "state_topic": "z2m/porch",
            "brightness_topic": "z2m/porch/set/brightness",
            "brightness_scale": 254,
        },
    )
    fan = factory("fan", {"command_topic": "fan/cmd", "payload_on": "1", "payload_off": "0"})
    assert isinstance(porch, MqttDevice) and porch.dimmable and not fan.dimmable

    async def main() -> None:
        task = asyncio.create_task(link.run())
        try:
            async with subscriber(broker.port, "z2m/porch/set/#", "fan/cmd") as (client, seen):
                await until(lambda: link.connected)
                assert porch.is_on() is None  # nothing heard yet
                await porch.set_on(True)
                await porch.set_brightness(0.5)
                await fan.set_on(True)
                await fan.set_on(False)
                with pytest.raises(ValueError, match="not dimmable"):
                    await fan.set_brightness(0.3)
                with pytest.raises(ValueError, match="between 0 and 1"):
                    await porch.set_brightness(3.0)
                await seen.wait_for(lambda s: len(s.messages) == 4)
                assert [(t, p) for t, p, _ in seen.messages] == [
                    ("z2m/porch/set", "ON"),
                    ("z2m/porch/set/brightness", "127"),
                    ("fan/cmd", "1"),
                    ("fan/cmd", "0"),
                ]
                await client.publish("z2m/porch", "ON", qos=1)
                await until(lambda: porch.is_on() is True)
                await client.publish("z2m/porch", '{"state": "OFF", "brightness": 3}', qos=1)
                await until(lambda: porch.is_on() is False)
                await client.publish("z2m/porch", b"\x00garbage", qos=1)
                await client.publish("z2m/porch", "ON", qos=1)  # a marker after the garbage
                await until(lambda: porch.is_on() is True)
                await client.publish("z2m/porch", "{not json", qos=1)
                await asyncio.sleep(0.1)
                assert porch.is_on() is True  # garbage kept the last known state
                porch.close()
                fan.close()
                await client.publish("z2m/porch", "OFF", qos=1)
                await asyncio.sleep(0.1)
                assert porch.is_on() is True  # closed: no longer following
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            outbox.close()
            broker.stop()

    asyncio.run(main())


def test_the_mqtt_benchmark_runs(tmp_path: Path):
    """Figures are measured, not asserted: this only keeps the benchmark working."""
    from appliance.bench.mqtt import measure

    broker = Mosquitto(tmp_path / "broker").start()
    try:
        figures = asyncio.run(measure("127.0.0.1", broker.port, 60, tmp_path))
    finally:
        broker.stop()
    assert set(figures) == {
        "messages", "outbox_store_per_s", "backlog_drain_per_s",
        "publish_latency_median_ms", "publish_latency_p95_ms",
    }  # fmt: skip
    assert figures["publish_latency_p95_ms"] >= figures["publish_latency_median_ms"] > 0
