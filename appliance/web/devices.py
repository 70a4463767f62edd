"""The devices the Settings page edits: `[[devices]]` tables checked with stricter rules
than the config file's (a Raspberry Pi header pin, no pin the button or status light
holds, exact MQTT topics, short plain names), one message per wrong field.

A device is handled as the table it is saved as (`DeviceConfig.to_table()`), so the page,
the API and the file share one shape. Devices are built when the appliance starts (the
GPIO pins are claimed, the fast path and the language model's tools learn the names), so
a change takes effect at the next start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from appliance.errors import ConfigError
from appliance.mqtt.device import MqttDeviceConfig, parse_mqtt_device
from appliance.sections.devices import DEVICE_KINDS, ActionsConfig, DeviceList, normalise_name

MAX_NAME = 60
"""Longest device name, alias or room (characters)."""
MAX_ALIASES = 8
MAX_TOPIC = 256
MAX_PAYLOAD = 64
MAX_DEVICES = 64
GPIO_PINS = (0, 27)
"""The BCM GPIO numbers on a Raspberry Pi's 40-pin header."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MQTT_KEYS = tuple(MqttDeviceConfig.__dataclass_fields__)
_TOPIC_KEYS = ("command_topic", "state_topic", "brightness_topic")
FORM_FIELDS = ("name", "kind", "aliases", "room", "backend", "pin", "pwm", "active_high",
               "command_topic", "state_topic", "payload_on", "payload_off",
               "brightness_topic")  # fmt: skip
"""The add/edit form's fields (`device.<field>` on the page)."""

Errors = dict[tuple[int, str], str]
"""(device index, field) → message."""


def reserved_pins(actions: ActionsConfig) -> dict[int, str]:
    """GPIO pins the button, the mute switch and the status light hold."""
    light = actions.status_light
    held = {
        actions.button.pin: "the button ([actions.button])",
        actions.mute_switch.pin: "the mute switch ([actions.mute_switch])",
        light.pin: "the status light ([actions.status_light])",
        light.red: "the status light's red ([actions.status_light])",
        light.green: "the status light's green ([actions.status_light])",
        light.blue: "the status light's blue ([actions.status_light])",
    }
    return {pin: what for pin, what in held.items() if pin is not None}


def _text_problem(value: Any, limit: int, *, empty_ok: bool = False) -> str | None:
    if not isinstance(value, str):
        return "must be text"
    if len(value) > limit:
        return f"is too long ({len(value)} characters; at most {limit})"
    if _CONTROL.search(value):
        return "must not contain control characters (tabs, new lines, …)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid text (a lone surrogate)"
    if not empty_ok and not value.strip():
        return "must not be empty"
    return None


def _name_problem(value: Any) -> str | None:
    problem = _text_problem(value, MAX_NAME)
    if problem is None and not normalise_name(value):
        problem = "needs a letter or digit"
    return problem


def _is_pin(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_devices(
    tables: list[Any], actions: ActionsConfig, *, broker: bool
) -> tuple[list[dict[str, Any]], Errors]:
    """The cleaned tables (names stripped, empty optional topics left out) and one message
    per wrong field. `broker`: whether an MQTT broker is configured (an MQTT device needs
    one to start)."""
    errors: Errors = {}
    cleaned: list[dict[str, Any]] = []
    if len(tables) > MAX_DEVICES:
        errors[(len(tables) - 1, "name")] = f"at most {MAX_DEVICES} devices"
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            errors[(index, "name")] = "must be a table with name, kind and gpio or mqtt"
            cleaned.append({})
            continue
        cleaned.append(_check_one(index, table, errors, broker=broker))
    _check_clashes(cleaned, reserved_pins(actions), errors)
    if not errors:
        try:  # the config file's own rules, so the saved file loads
            DeviceList.from_toml(cleaned, "devices")
            for table in cleaned:
                if "mqtt" in table:
                    parse_mqtt_device(table["name"], table["mqtt"])
        except ConfigError as err:
            errors[(0, "name")] = str(err)
    return cleaned, errors


def _check_one(index: int, table: dict[str, Any], errors: Errors, *, broker: bool) -> dict:
    def bad(key: str, message: str) -> None:
        errors.setdefault((index, key), message)

    for key in sorted(set(table) - {"name", "kind", "aliases", "room", "gpio", "mqtt"}):
        bad("name", f"unknown setting {key[:40]!r}")
    out: dict[str, Any] = {}
    name = table.get("name")
    problem = _name_problem(name)
    if problem:
        bad("name", f"Name {problem}")
    else:
        out["name"] = name.strip()
    kind = table.get("kind", "light")
    if kind not in DEVICE_KINDS:
        bad("kind", f"Kind must be one of {', '.join(DEVICE_KINDS)}")
    out["kind"] = kind
    aliases = table.get("aliases", [])
    if not isinstance(aliases, list):
        bad("aliases", "Other names must be a list of names")
        aliases = []
    if len(aliases) > MAX_ALIASES:
        bad("aliases", f"Other names: at most {MAX_ALIASES}")
    for alias in aliases:
        problem = _name_problem(alias)
        if problem:
            bad("aliases", f"Other name {str(alias)[:40]!r} {problem}")
    if aliases and (index, "aliases") not in errors:
        out["aliases"] = [a.strip() for a in aliases]
    room = table.get("room", "")
    problem = _text_problem(room, MAX_NAME, empty_ok=True)
    if problem:
        bad("room", f"Room {problem}")
    elif room.strip():
        out["room"] = room.strip()
    gpio, mqtt = table.get("gpio"), table.get("mqtt")
    if (gpio is None) == (mqtt is None):
        bad("backend", "Give exactly one of a GPIO pin or MQTT topics")
    if gpio is not None:
        out["gpio"] = _check_gpio(gpio, bad)
    if mqtt is not None:
        out["mqtt"] = _check_mqtt(mqtt, bad)
        if not broker:
            bad("backend", "An MQTT device needs the MQTT broker: fill in the broker's host "
                "above and save it first")  # fmt: skip
    return out


def _check_gpio(gpio: Any, bad: Any) -> dict[str, Any]:
    if not isinstance(gpio, dict):
        bad("pin", "gpio must be a table, e.g. { pin = 17 }")
        return {}
    for key in sorted(set(gpio) - {"pin", "pwm", "active_high"}):
        bad("pin", f"unknown gpio setting {key[:40]!r}")
    pin = gpio.get("pin")
    low, high = GPIO_PINS
    if not _is_pin(pin) or not low <= pin <= high:
        bad("pin", f"GPIO pin must be a BCM number {low}–{high}, not {str(pin)[:20]!r}")
    out: dict[str, Any] = {"pin": pin}
    for flag, default in (("pwm", False), ("active_high", True)):
        value = gpio.get(flag, default)
        if not isinstance(value, bool):
            bad(flag, f"{flag} must be true or false")
        out[flag] = value
    return out


def _check_mqtt(mqtt: Any, bad: Any) -> dict[str, Any]:
    if not isinstance(mqtt, dict):
        bad("command_topic", "mqtt must be a table of topics")
        return {}
    for key in sorted(set(mqtt) - set(_MQTT_KEYS)):
        bad("command_topic", f"unknown mqtt setting {key[:40]!r}")
    out: dict[str, Any] = {}
    for key in _TOPIC_KEYS:
        topic = mqtt.get(key, "")
        label = key.replace("_", " ").capitalize()
        problem = _text_problem(topic, MAX_TOPIC, empty_ok=key != "command_topic")
        if problem is None and ("+" in topic or "#" in topic):
            problem = "must not contain the wildcards + or # (it names one topic)"
        if problem is None and topic and (topic.startswith("/") or topic.endswith("/")):
            problem = "must not start or end with /"
        if problem is None and topic and not all(level.strip() for level in topic.split("/")):
            problem = "must not have an empty level (//)"
        if problem:
            bad(key, f"{label} {problem}")
        elif topic:
            out[key] = topic
    for key, default in (("payload_on", "ON"), ("payload_off", "OFF")):
        payload = mqtt.get(key, default)
        problem = _text_problem(payload, MAX_PAYLOAD)
        if problem:
            bad(key, f"{key.replace('_', ' ').capitalize()} {problem}")
        out[key] = payload
    if out.get("payload_on") == out.get("payload_off"):
        bad("payload_off", "The on and off payloads must differ")
    if "brightness_scale" in mqtt:
        scale = mqtt["brightness_scale"]
        if not _is_pin(scale) or not 1 <= scale <= 65535:
            bad("brightness_topic", "brightness_scale must be a whole number 1–65535")
        elif not out.get("brightness_topic"):
            bad("brightness_topic", "brightness_scale is set without a brightness topic")
        out["brightness_scale"] = scale
    return out


def _check_clashes(tables: list[dict[str, Any]], reserved: dict[int, str], errors: Errors) -> None:
    """Names and aliases unique (as spoken), a pin used once and not by the controls."""
    owner: dict[str, int] = {}
    for index, table in enumerate(tables):
        if "name" not in table:
            continue
        spoken = normalise_name(table["name"])
        if spoken in owner:
            other = tables[owner[spoken]]["name"]
            errors.setdefault((index, "name"),
                              f'Name: a device is already called "{other}"')  # fmt: skip
        else:
            owner[spoken] = index
    for index, table in enumerate(tables):
        for alias in table.get("aliases", []):
            other = owner.get(normalise_name(alias))
            if other is not None and other != index:
                errors.setdefault(
                    (index, "aliases"),
                    f'Other name "{alias}" is the name of "{tables[other]["name"]}"',
                )
        for other_index, other in enumerate(tables):
            if other_index < index and "name" in other and "name" in table:
                shared = {normalise_name(a) for a in table.get("aliases", [])} & {
                    normalise_name(a) for a in other.get("aliases", [])
                }
                if shared:
                    errors.setdefault(
                        (index, "aliases"),
                        f'Other name "{sorted(shared)[0]}" is also one of "{other["name"]}"',
                    )
    pins: dict[int, int] = {}
    for index, table in enumerate(tables):
        pin = table.get("gpio", {}).get("pin")
        if not _is_pin(pin):
            continue
        if pin in reserved:
            errors.setdefault((index, "pin"), f"GPIO pin {pin} is used by {reserved[pin]}")
        elif pin in pins:
            other = tables[pins[pin]].get("name", "another device")
            errors.setdefault((index, "pin"), f'GPIO pin {pin} is already used by "{other}"')
        else:
            pins[pin] = index


@dataclass(frozen=True)
class DeviceForm:
    """One device as the add/edit form holds it (all text, as typed)."""

    values: dict[str, str]

    @classmethod
    def of(cls, table: dict[str, Any]) -> DeviceForm:
        gpio, mqtt = table.get("gpio") or {}, table.get("mqtt") or {}
        return cls({
            "name": table.get("name", ""), "kind": table.get("kind", "light"),
            "aliases": ", ".join(table.get("aliases", [])), "room": table.get("room", ""),
            "backend": "mqtt" if mqtt else "gpio",
            "pin": str(gpio.get("pin", "")), "pwm": "on" if gpio.get("pwm") else "",
            "active_high": "" if gpio and not gpio.get("active_high", True) else "on",
            "command_topic": mqtt.get("command_topic", ""),
            "state_topic": mqtt.get("state_topic", ""),
            "payload_on": mqtt.get("payload_on", "ON"),
            "payload_off": mqtt.get("payload_off", "OFF"),
            "brightness_topic": mqtt.get("brightness_topic", ""),
        })  # fmt: skip

    @classmethod
    def from_form(cls, form: dict[str, str]) -> DeviceForm:
        return cls({key: form.get(f"device.{key}", "") for key in FORM_FIELDS})

    def table(
        self, previous: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The `[[devices]]` table the form describes; errors for what cannot be read as
        typed (a pin that is not a number). A setting the form does not show (an MQTT
        brightness scale) is kept from `previous`."""
        v = self.values
        errors: dict[str, str] = {}
        aliases = [a.strip() for a in v["aliases"].split(",") if a.strip()]
        table: dict[str, Any] = {"name": v["name"], "kind": v["kind"] or "light",
                                 "aliases": aliases, "room": v["room"]}  # fmt: skip
        if v["backend"] == "gpio":
            text = v["pin"].strip()
            pin: Any = text
            if re.fullmatch(r"\d{1,3}", text):
                pin = int(text)
            elif text:
                errors["pin"] = f"GPIO pin must be a number, not {text[:20]!r}"
            else:
                errors["pin"] = "GPIO pin: give the BCM pin number, e.g. 17"
            table["gpio"] = {"pin": pin, "pwm": v["pwm"] == "on",
                             "active_high": v["active_high"] == "on"}  # fmt: skip
        elif v["backend"] == "mqtt":
            mqtt: dict[str, Any] = {key: v[key] for key in (*_TOPIC_KEYS, "payload_on",
                                                            "payload_off")}  # fmt: skip
            old = (previous or {}).get("mqtt") or {}
            if "brightness_scale" in old and v["brightness_topic"]:
                mqtt["brightness_scale"] = old["brightness_scale"]
            table["mqtt"] = mqtt
        else:
            errors["backend"] = "Choose how it is switched: a GPIO pin or MQTT"
        return table, errors
