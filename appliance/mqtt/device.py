"""Lights and switches behind MQTT topics, for the action tools' device registry.

A `[[devices]]` entry in the config backs a device with MQTT through its `mqtt` subtable:

    [[devices]]
    name = "porch light"
    mqtt = { command_topic = "zigbee2mqtt/porch/set/state", state_topic = "zigbee2mqtt/porch/state",
             payload_on = "ON", payload_off = "OFF",
             brightness_topic = "zigbee2mqtt/porch/set/brightness", brightness_scale = 254 }

`is_on` answers from the last message on `state_topic` ("is the porch light on?"), None
until one arrived. Commands go through the link's outbox: sent in order, and dropped if
the broker is still away after `COMMAND_TTL` seconds (a light that switches an hour late
is worse than one that does not).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from appliance.actions.devices import DeviceBackend
from appliance.errors import ConfigError
from appliance.mqtt.link import MqttLink
from appliance.sections.mqtt import check_topic

_LOGGER = logging.getLogger(__name__)

COMMAND_TTL = 60.0
"""Seconds a device command may wait in the outbox for the broker."""


@dataclass(frozen=True)
class MqttDeviceConfig:
    command_topic: str
    """Where ON/OFF commands are published."""
    state_topic: str = ""
    """Where the device reports its state; empty = state unknown."""
    payload_on: str = "ON"
    payload_off: str = "OFF"
    brightness_topic: str = ""
    """Where brightness is published (a number 0–brightness_scale); empty = not dimmable."""
    brightness_scale: int = 255
    """The number that means full brightness."""


def parse_mqtt_device(name: str, table: Any) -> MqttDeviceConfig:
    """Validate the `mqtt` subtable of a `[[devices]]` entry."""
    where = f"devices[{name!r}].mqtt"
    if not isinstance(table, dict):
        raise ConfigError(f'{where} must be a table, e.g. {{ command_topic = "home/lamp/set" }}')
    known = set(MqttDeviceConfig.__dataclass_fields__)
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    if "command_topic" not in table:
        raise ConfigError(f"{where}: command_topic is missing")
    for key in ("command_topic", "state_topic", "payload_on", "payload_off", "brightness_topic"):
        if key in table and not isinstance(table[key], str):
            raise ConfigError(f"{where}.{key} must be a string, not {table[key]!r}")
    scale = table.get("brightness_scale", 255)
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 65535:
        raise ConfigError(f"{where}.brightness_scale must be a whole number 1–65535")
    config = MqttDeviceConfig(**table)
    check_topic(config.command_topic, f"{where}.command_topic")
    check_topic(config.state_topic, f"{where}.state_topic", allow_empty=True)
    check_topic(config.brightness_topic, f"{where}.brightness_topic", allow_empty=True)
    if not config.payload_on or config.payload_on == config.payload_off:
        raise ConfigError(f"{where}: payload_on and payload_off must be two different texts")
    if "brightness_scale" in table and not config.brightness_topic:
        raise ConfigError(f"{where}.brightness_scale is set without brightness_topic")
    return config


class MqttDevice:
    """A `DeviceBackend` that publishes commands and follows the state topic."""

    def __init__(self, name: str, config: MqttDeviceConfig, link: MqttLink) -> None:
        self.name = name
        self.config = config
        self.dimmable = bool(config.brightness_topic)
        self._link = link
        self._state: bool | None = None
        self._unsubscribe = (
            link.subscribe(config.state_topic, self._on_state) if config.state_topic else None
        )

    async def set_on(self, on: bool) -> None:
        payload = self.config.payload_on if on else self.config.payload_off
        self._link.publish(self.config.command_topic, payload, expires_in=COMMAND_TTL)

    async def set_brightness(self, level: float) -> None:
        if not self.dimmable:
            raise ValueError(f"{self.name} is not dimmable (no brightness_topic)")
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"brightness must be between 0 and 1, not {level}")
        value = round(level * self.config.brightness_scale)
        self._link.publish(self.config.brightness_topic, str(value), expires_in=COMMAND_TTL)

    def is_on(self) -> bool | None:
        return self._state

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_state(self, topic: str, payload: bytes) -> None:
        state = self._parse_state(payload)
        if state is None:
            _LOGGER.warning(
                "%s: state %r on %s is neither %r nor %r; keeping the last known state",
                self.name,
                payload[:60],
                topic,
                self.config.payload_on,
                self.config.payload_off,
            )
            return
        self._state = state

    def _parse_state(self, payload: bytes) -> bool | None:
        text = payload.decode("utf-8", "replace").strip()
        if text == self.config.payload_on:
            return True
        if text == self.config.payload_off:
            return False
        if text.startswith("{"):  # zigbee2mqtt and Tasmota report JSON: {"state": "ON", …}
            try:
                data = json.loads(text)
            except ValueError:
                return None
            if isinstance(data, dict):
                value = data.get("state", data.get("POWER"))
                if isinstance(value, str):
                    return self._parse_state(value.encode("utf-8"))
        return None


class MqttDevices:
    """Makes MQTT device backends on one link: `make_mqtt_backend` is the factory the
    device registry is given for entries with an `mqtt` subtable."""

    def __init__(self, link: MqttLink) -> None:
        self.link = link

    def make_mqtt_backend(self, name: str, table: dict[str, Any]) -> DeviceBackend:
        return MqttDevice(name, parse_mqtt_device(name, table), self.link)
