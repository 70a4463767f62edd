"""MQTT for `appliance run`: the link, the bridge and the device factory, started together
and stopped cleanly. A broker that is down or refuses the credentials never stops the
voice pipeline: the link logs it, publishes an `error` event (stage "mqtt") and retries
(or, for refused credentials, stops trying)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from appliance import events as ev
from appliance.config import data_dir
from appliance.mqtt.bridge import MqttBridge, PipelineControl
from appliance.mqtt.device import MqttDevices
from appliance.mqtt.link import MqttLink
from appliance.mqtt.outbox import Outbox
from appliance.sections.mqtt import MqttConfig

_LOGGER = logging.getLogger(__name__)
OUTBOX_FILE = "mqtt-outbox.sqlite3"


class MqttService:
    def __init__(self, link: MqttLink, bridge: MqttBridge) -> None:
        self.link = link
        self.bridge = bridge
        self.devices = MqttDevices(link)


@contextlib.asynccontextmanager
async def mqtt_service(
    config: MqttConfig,
    pipeline: PipelineControl,
    *,
    state_dir: Path | None = None,
    vision: Any = None,
) -> AsyncIterator[MqttService | None]:
    """Run MQTT beside the pipeline while the block runs; yields None when `[mqtt]` has
    no host. `vision` (the running VisionService, when a camera is on) enables the
    `look` command and its Home Assistant button."""
    if not config.enabled:
        yield None
        return
    path = (state_dir or data_dir()) / OUTBOX_FILE
    outbox = await asyncio.to_thread(Outbox, path, config.queue_max)

    def on_error(code: str, message: str) -> None:
        pipeline.bus.publish(
            ev.Error(turn=0, stream_time=0.0, stage="mqtt", code=code, message=message)
        )

    link = MqttLink(config, outbox, on_error=on_error)
    bridge = MqttBridge(pipeline, link, config, vision=vision)
    bridge.start()
    task = asyncio.create_task(link.run(), name="mqtt-link")

    def crashed(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            _LOGGER.error("MQTT stopped by an unexpected error", exc_info=done.exception())
            on_error("mqtt_internal", f"MQTT stopped by an unexpected error: {done.exception()}")

    task.add_done_callback(crashed)
    try:
        yield MqttService(link, bridge)
    finally:
        await bridge.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):  # the last state changes, if the broker is there
                await link.flushed()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task  # an unexpected error was logged by `crashed`
        await asyncio.to_thread(outbox.close)
