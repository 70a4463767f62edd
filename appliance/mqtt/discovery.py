"""Home Assistant MQTT discovery: retained config payloads on
`<prefix>/<component>/<node_id>/<object_id>/config` that make the appliance and its
entities appear in Home Assistant with no hand configuration. An empty retained payload on
the same topic removes an entity; that is how `discovery = false` (and
`publish_transcripts = false`) take them away again."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from appliance.sections.mqtt import MqttConfig

STATES = ("idle", "listening", "thinking", "speaking", "follow_up", "muted", "error")
"""Values of `<base>/state` (the status sensor's enum options)."""


@dataclass(frozen=True)
class Topics:
    """The appliance's own topics under `base`."""

    base: str

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def muted(self) -> str:
        return f"{self.base}/muted"

    @property
    def transcript(self) -> str:
        return f"{self.base}/transcript"

    @property
    def reply(self) -> str:
        return f"{self.base}/reply"

    @property
    def timers(self) -> str:
        return f"{self.base}/timers"

    @property
    def timer_event(self) -> str:
        return f"{self.base}/timer_event"

    @property
    def last_action(self) -> str:
        return f"{self.base}/last_action"

    @property
    def error(self) -> str:
        return f"{self.base}/error"

    @property
    def ask_result(self) -> str:
        return f"{self.base}/ask/result"

    @property
    def look_result(self) -> str:
        return f"{self.base}/look/result"

    def command(self, name: str) -> str:
        return f"{self.base}/command/{name}"


@dataclass(frozen=True)
class Entity:
    component: str
    """Home Assistant platform: sensor, switch, text, notify, button."""
    object_id: str
    config: dict[str, Any]
    """Entity-specific keys; name, unique_id, device, availability are added."""
    private: bool = False
    """Carries what was said: announced only with publish_transcripts."""
    vision: bool = False
    """Needs the camera: announced only when vision is on."""


def _version() -> str:
    try:
        return metadata.version("appliance")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def entities(topics: Topics) -> list[Entity]:
    """Every entity the appliance can announce."""
    return [
        Entity(
            "sensor",
            "status",
            {
                "name": "Status",
                "state_topic": topics.state,
                "device_class": "enum",
                "options": list(STATES),
                "icon": "mdi:account-voice",
            },
        ),
        Entity(
            "switch",
            "mute",
            {
                "name": "Mute",
                "command_topic": topics.command("mute"),
                "state_topic": topics.muted,
                "payload_on": "ON",
                "payload_off": "OFF",
                "icon": "mdi:microphone-off",
            },
        ),
        Entity(
            "sensor",
            "timers",
            {
                "name": "Timers",
                "state_topic": topics.timers,
                "value_template": "{{ value_json.active }}",
                "json_attributes_topic": topics.timers,
                "unit_of_measurement": "timers",
                "icon": "mdi:timer-outline",
            },
        ),
        Entity(
            "sensor",
            "next_timer",
            {
                "name": "Next timer",
                "state_topic": topics.timers,
                "value_template": "{{ value_json.next_ends_at or None }}",
                "device_class": "timestamp",
                "icon": "mdi:timer-sand",
            },
        ),
        Entity(
            "sensor",
            "last_action",
            {
                "name": "Last action",
                "state_topic": topics.last_action,
                "value_template": "{{ value_json.tool }}",
                "json_attributes_topic": topics.last_action,
                "icon": "mdi:gesture-tap",
            },
        ),
        Entity(
            "text",
            "say",
            {
                "name": "Say",
                "command_topic": topics.command("say"),
                "mode": "text",
                "max": 255,
                "icon": "mdi:bullhorn",
            },
        ),
        Entity(
            "notify",
            "say",
            {"name": "Say", "command_topic": topics.command("say"), "icon": "mdi:bullhorn"},
        ),
        Entity(
            "button",
            "listen",
            {
                "name": "Listen",
                "command_topic": topics.command("listen"),
                "payload_press": "PRESS",
                "icon": "mdi:microphone",
            },
        ),
        Entity(
            "button",
            "look",
            {
                "name": "Look",
                "command_topic": topics.command("look"),
                "payload_press": "PRESS",
                "icon": "mdi:camera",
            },
            vision=True,
        ),
        Entity(
            "sensor",
            "last_transcript",
            {
                "name": "Last transcript",
                "state_topic": topics.transcript,
                "value_template": "{{ value[:255] }}",
                "icon": "mdi:text-to-speech",
            },
            private=True,
        ),
        Entity(
            "sensor",
            "last_reply",
            {
                "name": "Last reply",
                "state_topic": topics.reply,
                "value_template": "{{ value[:255] }}",
                "icon": "mdi:message-reply-text",
            },
            private=True,
        ),
    ]


def config_topic(config: MqttConfig, entity: Entity) -> str:
    node = config.node_id
    return f"{config.discovery_prefix}/{entity.component}/{node}/{entity.object_id}/config"


def device_block(config: MqttConfig) -> dict[str, Any]:
    return {
        "identifiers": [f"appliance_{config.node_id}"],
        "name": config.name,
        "manufacturer": "appliance",
        "model": "Offline voice appliance",
        "sw_version": _version(),
    }


def discovery_messages(config: MqttConfig, *, vision: bool = False) -> list[tuple[str, str]]:
    """(config topic, retained payload) for every entity: the JSON config of those to
    announce, "" (remove) for the others. `vision`: a camera is on (the Look button)."""
    topics = Topics(config.base)
    device = device_block(config)
    messages = []
    for entity in entities(topics):
        wanted = (
            config.discovery
            and (config.publish_transcripts or not entity.private)
            and (vision or not entity.vision)
        )
        if not wanted:
            messages.append((config_topic(config, entity), ""))
            continue
        payload = {
            **entity.config,
            "unique_id": f"{config.node_id}_{entity.component}_{entity.object_id}",
            "availability_topic": topics.availability,
            "payload_available": "online",
            "payload_not_available": "offline",
            "qos": 1,
            "device": device,
            "origin": {"name": "appliance", "sw_version": device["sw_version"]},
        }
        messages.append((config_topic(config, entity), json.dumps(payload, ensure_ascii=False)))
    return messages
