"""The appliance's entities as Home Assistant sees them over the native API: each lists
itself, says its state, and takes the commands meant for it."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from typing import Protocol

from aioesphomeapi import api_pb2
from google.protobuf.message import Message

_LOGGER = logging.getLogger(__name__)
ENTITY_CATEGORY_CONFIG = 1


def key_of(object_id: str) -> int:
    """A stable key for an entity: Home Assistant keeps its settings by it."""
    return zlib.crc32(object_id.encode("utf-8")) & 0x7FFFFFFF


class Entity(Protocol):
    key: int
    object_id: str

    def listing(self) -> Message: ...

    def state(self) -> Message: ...

    def command(self, message: Message) -> bool:
        """Apply a command meant for this entity (its key); False when the message is
        no command this entity takes."""
        ...


class MuteSwitch:
    """The microphone's mute: on, nothing is heard (the wake word neither)."""

    object_id = "mute"

    def __init__(self, is_muted: Callable[[], bool], set_muted: Callable[[bool], None]) -> None:
        self.key = key_of(self.object_id)
        self._is_muted = is_muted
        self._set_muted = set_muted

    def listing(self) -> Message:
        return api_pb2.ListEntitiesSwitchResponse(
            object_id=self.object_id, key=self.key, name="Mute", icon="mdi:microphone-off"
        )

    def state(self) -> Message:
        return api_pb2.SwitchStateResponse(key=self.key, state=self._is_muted())

    def command(self, message: Message) -> bool:
        if not isinstance(message, api_pb2.SwitchCommandRequest):
            return False
        self._set_muted(message.state)
        return True


SENSITIVITY = {
    "Slightly sensitive": 0.7,
    "Moderately sensitive": 0.5,
    "Very sensitive": 0.35,
}
"""The wake word's sensitivity as the Voice PE names it, and the detector's threshold for
each (a lower threshold wakes more easily)."""


class WakeSensitivity:
    """How easily the wake word wakes the appliance: a select of three settings, each a
    threshold of the wake word detector."""

    object_id = "wake_word_sensitivity"

    def __init__(
        self, threshold: Callable[[], float | None], set_threshold: Callable[[float], bool]
    ) -> None:
        self.key = key_of(self.object_id)
        self._threshold = threshold
        self._set_threshold = set_threshold

    def listing(self) -> Message:
        return api_pb2.ListEntitiesSelectResponse(
            object_id=self.object_id,
            key=self.key,
            name="Wake word sensitivity",
            icon="mdi:account-voice",
            options=list(SENSITIVITY),
            entity_category=ENTITY_CATEGORY_CONFIG,
        )

    def state(self) -> Message:
        threshold = self._threshold()
        if threshold is None:
            return api_pb2.SelectStateResponse(key=self.key, missing_state=True)
        # A threshold set in the config file may lie between two: the nearest is shown.
        nearest = min(SENSITIVITY, key=lambda name: abs(SENSITIVITY[name] - threshold))
        return api_pb2.SelectStateResponse(key=self.key, state=nearest)

    def command(self, message: Message) -> bool:
        if not isinstance(message, api_pb2.SelectCommandRequest):
            return False
        threshold = SENSITIVITY.get(message.state)
        if threshold is None:
            _LOGGER.warning(
                "Home Assistant chose a wake word sensitivity %r that is none of %s: ignored",
                message.state, ", ".join(SENSITIVITY),
            )  # fmt: skip
            return True
        if not self._set_threshold(threshold):
            _LOGGER.warning("the wake word's sensitivity cannot be changed: nothing listens")
        return True
