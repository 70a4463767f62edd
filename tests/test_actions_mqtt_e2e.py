"""Spoken commands through the real engines switch a GPIO pin (MockFactory) and an MQTT
device on a real mosquitto, in one conversation: the actions registry, the MQTT link
and its device backends joined as `appliance run` joins them."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance import events as ev
from appliance.audio.sinks import RecordingSink
from appliance.audio.sources import ArraySource
from appliance.config import AppConfig
from appliance.engines import load_engines, pipeline_settings
from appliance.house import Actions
from appliance.mqtt.device import MqttDevices
from appliance.mqtt.link import MqttLink
from appliance.mqtt.outbox import Outbox
from appliance.pipeline import Pipeline
from appliance.sections.devices import ActionsConfig, DeviceConfig, GpioOutput
from appliance.testing.speech import add_noise, compose, espeak_phrase
from tests.fakes import Recorder, repeatable_config
from tests.mqtt_broker import Mosquitto, subscriber
from tests.test_mqtt_link import config, until

pytestmark = pytest.mark.e2e
DEVICES = [
    DeviceConfig("porch light", "light", (), "outside", GpioOutput(17)),
    DeviceConfig(
        "garden fountain",
        "switch",
        mqtt={"command_topic": "garden/fountain/set", "state_topic": "garden/fountain"},
    ),
]


def test_spoken_commands_reach_a_pin_and_a_real_broker(tmp_path):
    engines = load_engines(repeatable_config())
    pins = MockFactory(pin_class=MockPWMPin)
    broker = Mosquitto(tmp_path / "broker").start()
    outbox = Outbox(tmp_path / "outbox.sqlite3", 100)
    link = MqttLink(config(broker.port), outbox)
    # espeak-ng's speech is the same every run (Piper's varies): the same transcripts.
    parts: list = [0.5]
    for request in (
        "Turn on the garden fountain.",
        "Turn on the porch light.",
        "Turn off the garden fountain.",
    ):
        parts += [
            espeak_phrase("Hey Jarvis.", speed=140),
            0.4,
            espeak_phrase(request, speed=140),
            1.5,
        ]
    recording = add_noise(compose(*parts))
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)

    async def main() -> list[tuple[str, str]]:
        task = asyncio.create_task(link.run())
        try:
            async with subscriber(broker.port, "garden/#") as (_, seen):
                await until(lambda: link.connected)
                settings = pipeline_settings(AppConfig())
                async with Pipeline(engines, RecordingSink(), bus, settings) as pipeline:
                    actions = Actions(
                        DEVICES,
                        ActionsConfig(),
                        bus,
                        tmp_path,
                        pin_factory=pins,
                        make_mqtt=MqttDevices(link).make_mqtt_backend,
                    )
                    async with actions:
                        actions.attach(pipeline)
                        await pipeline.run(ArraySource(recording))
                with contextlib.suppress(TimeoutError):  # the assertion says what came
                    await seen.wait_for(lambda s: len(s.messages) >= 2)
                return [(t, p) for t, p, _ in seen.messages]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            outbox.close()
            broker.stop()

    try:
        messages = asyncio.run(main())
        heard = [(e.type, getattr(e, "text", getattr(e, "result", ""))) for e in recorder.events]
        expected = [("garden/fountain/set", "ON"), ("garden/fountain/set", "OFF")]
        assert messages == expected, [h for h in heard if h[0] in ("transcript", "action")]
        # Switched on once; the 0 after it is the pin released when the actions closed.
        assert [float(s.state) for s in pins.pin(17).states] == [0.0, 1.0, 0.0]
    finally:
        pins.reset()
    actions = [(e.tool, e.ok, e.path) for e in recorder.of("action")]
    assert len(actions) == 3 and all(ok and path == "intent" for _, ok, path in actions)
