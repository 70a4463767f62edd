"""Devices and actions settings: `[[devices]]` tables and the `[actions]` section.

Devices are configured, not coded. Each `[[devices]]` table names a device, how to
recognise it when spoken (aliases, room, kind) and what backs it: a GPIO pin or an MQTT
topic set (the raw `mqtt` table is handed to the MQTT engineer's device factory).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import ConfigError

DEVICE_KINDS = ("light", "lamp", "switch", "relay", "fan", "plug", "heater", "socket")
_PIN_KEYS = {"pin", "pwm", "active_high"}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class GpioOutput:
    pin: int
    """BCM pin number (gpiozero also accepts "GPIO17" / "BOARD11"; here the BCM number)."""
    pwm: bool = False
    """Drive the pin with PWM, so the device is dimmable (brightness 0–100 %)."""
    active_high: bool = True
    """False when the relay/LED is on while the pin is low."""


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    """What the device is called, e.g. "porch light"; matched against what was said."""
    kind: str = "light"
    """light, lamp, switch, relay, fan, plug, heater or socket: lets "the light" find it."""
    aliases: tuple[str, ...] = ()
    """Other names for it, e.g. ("front light",)."""
    room: str = ""
    """Where it is; "the kitchen light" matches a light with room "kitchen"."""
    gpio: GpioOutput | None = None
    """Driven by a GPIO pin."""
    mqtt: dict[str, Any] | None = None
    """Driven over MQTT: the raw table, handed to the MQTT device factory."""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def to_table(self) -> dict[str, Any]:
        """The `[[devices]]` table this entry was read from (for saving the config)."""
        table: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.aliases:
            table["aliases"] = list(self.aliases)
        if self.room:
            table["room"] = self.room
        if self.gpio is not None:
            table["gpio"] = dataclasses.asdict(self.gpio)
        if self.mqtt is not None:
            table["mqtt"] = dict(self.mqtt)
        return table


class DeviceList(tuple):  # type: ignore[type-arg]
    """The `[[devices]]` array of tables, validated (see `from_toml`)."""

    @classmethod
    def from_toml(cls, value: Any, key: str) -> DeviceList:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be an array of [[{key}]] tables")
        devices = [_device(item, f"{key}[{index}]") for index, item in enumerate(value)]
        seen: dict[str, str] = {}
        pins: dict[int, str] = {}
        for device in devices:
            for name in device.names:
                spoken = normalise_name(name)
                if spoken in seen and seen[spoken] != device.name:
                    raise ConfigError(
                        f'device name "{name}" is used by both "{seen[spoken]}" and '
                        f'"{device.name}"; every name and alias must be unique'
                    )
                seen[spoken] = device.name
            if device.gpio is not None:
                other = pins.get(device.gpio.pin)
                if other is not None:
                    raise ConfigError(
                        f'GPIO pin {device.gpio.pin} is used by both "{other}" and '
                        f'"{device.name}"; give each device its own pin'
                    )
                pins[device.gpio.pin] = device.name
        return cls(devices)


def normalise_name(name: str) -> str:
    """Lower-case words (of any language: "Küchenlicht" stays whole); a possessive goes
    ("port's light" → "port light", as whisper may write "porch light")."""
    name = re.sub(r"['’]s\b", "", name.lower()).replace("'", "").replace("’", "")
    return " ".join(re.sub(r"[^\w ]+|_", " ", name).split())  # letters of any language


def _device(item: Any, key: str) -> DeviceConfig:
    if not isinstance(item, dict):
        raise ConfigError(f"{key} must be a table with at least name = ...")
    allowed = {"name", "kind", "aliases", "room", "gpio", "mqtt"}
    unknown = sorted(set(item) - allowed)
    _check(not unknown, f"{key}: unknown setting(s): {', '.join(unknown)}")
    name = item.get("name")
    _check(isinstance(name, str) and bool(normalise_name(name)),
           f"{key}.name must be a non-empty text, e.g. name = \"porch light\"")  # fmt: skip
    where = f'device "{name}"'
    kind = item.get("kind", "light")
    _check(kind in DEVICE_KINDS, f"{where}: kind must be one of {', '.join(DEVICE_KINDS)}")
    aliases = item.get("aliases", [])
    _check(isinstance(aliases, list) and all(isinstance(a, str) and a.strip() for a in aliases),
           f'{where}: aliases must be a list of names, e.g. ["front light"]')  # fmt: skip
    room = item.get("room", "")
    _check(isinstance(room, str), f"{where}: room must be text")
    gpio, mqtt = item.get("gpio"), item.get("mqtt")
    _check((gpio is None) != (mqtt is None),
           f"{where}: give exactly one of gpio = {{ pin = … }} or mqtt = {{ … }}")  # fmt: skip
    output = None
    if gpio is not None:
        _check(isinstance(gpio, dict), f"{where}: gpio must be a table, e.g. {{ pin = 17 }}")
        unknown = sorted(set(gpio) - _PIN_KEYS)
        _check(not unknown, f"{where}: unknown gpio setting(s): {', '.join(unknown)}")
        pin = gpio.get("pin")
        _check(isinstance(pin, int) and not isinstance(pin, bool) and 0 <= pin <= 53,
               f"{where}: gpio.pin must be a BCM pin number 0–53")  # fmt: skip
        for flag in ("pwm", "active_high"):
            _check(
                isinstance(gpio.get(flag, True), bool), f"{where}: gpio.{flag} must be true/false"
            )
        output = GpioOutput(pin, gpio.get("pwm", False), gpio.get("active_high", True))
    if mqtt is not None:
        _check(isinstance(mqtt, dict), f"{where}: mqtt must be a table of topics")
    return DeviceConfig(name.strip(), kind, tuple(a.strip() for a in aliases), room.strip(),
                        output, mqtt)  # fmt: skip


@dataclass(frozen=True)
class ButtonConfig:
    pin: int | None = None
    """BCM pin of a push button; unset = no button. Pressed: listen now (push-to-talk)."""
    pull_up: bool = True
    """True when the button connects the pin to ground."""
    hold_seconds: float = 5.0
    """Held this long: the long-press hook (reset pairing)."""

    def __post_init__(self) -> None:
        _check(0.5 <= self.hold_seconds <= 30, "actions.button.hold_seconds must be 0.5–30")


@dataclass(frozen=True)
class MuteSwitchConfig:
    pin: int | None = None
    """BCM pin of a mute switch; unset = none. While closed the microphone is muted."""
    pull_up: bool = True


@dataclass(frozen=True)
class StatusLightConfig:
    pin: int | None = None
    """A single LED (BCM pin) following the appliance's state; unset = none."""
    red: int | None = None
    """An RGB LED instead: its three BCM pins."""
    green: int | None = None
    blue: int | None = None
    active_high: bool = True

    def __post_init__(self) -> None:
        rgb = (self.red, self.green, self.blue)
        _check(all(p is None for p in rgb) or all(p is not None for p in rgb),
               "actions.status_light: give all of red, green and blue, or none")  # fmt: skip
        _check(self.pin is None or self.red is None,
               "actions.status_light: give pin (one LED) or red/green/blue, not both")  # fmt: skip


@dataclass(frozen=True)
class ActionsConfig:
    fast_path: bool = True
    """Answer common commands (devices, timers, time, sums) without the language model."""
    llm_tools: bool = True
    """Let the language model call tools for the rest (llama.cpp only: needs a grammar)."""
    max_timer_hours: float = 24.0
    """The longest timer accepted."""
    audit_retention_days: float = 90.0
    """Audit log entries older than this are deleted (at start-up and once a day)."""
    audit_max_rows: int = 100_000
    """At most this many audit entries are kept (oldest deleted first)."""
    pin_factory: str = ""
    """gpiozero pin factory: "" = gpiozero's default ($GPIOZERO_PIN_FACTORY, else lgpio…)
    on a Raspberry Pi and the lines of `gpio_chip` on any other board with GPIO;
    "gpiochip" (those lines, on any board), or "mock" (no hardware: for trying a config)."""
    gpio_chip: int = 0
    """The /dev/gpiochipN whose line numbers are the pins, off a Raspberry Pi (a Rockchip
    board's GPIO bank, a USB GPIO bridge)."""
    button: ButtonConfig = field(default_factory=ButtonConfig)
    mute_switch: MuteSwitchConfig = field(default_factory=MuteSwitchConfig)
    status_light: StatusLightConfig = field(default_factory=StatusLightConfig)

    def __post_init__(self) -> None:
        _check(0 < self.max_timer_hours <= 24 * 7, "actions.max_timer_hours must be 0–168")
        _check(self.audit_retention_days > 0, "actions.audit_retention_days must be > 0")
        _check(self.audit_max_rows >= 100, "actions.audit_max_rows must be at least 100")
        _check(
            self.pin_factory in ("", "mock", "gpiochip", "lgpio", "rpigpio", "pigpio", "native"),
            "actions.pin_factory must be empty, mock, gpiochip, lgpio, rpigpio, pigpio or native",
        )
        _check(
            isinstance(self.gpio_chip, int) and not isinstance(self.gpio_chip, bool)
            and 0 <= self.gpio_chip <= 255,
            "actions.gpio_chip must be a chip number, 0–255 (/dev/gpiochipN)",
        )  # fmt: skip
