"""The appliance's entities as Home Assistant sees them over the native API: each lists
itself, says its state, and takes the commands meant for it."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from typing import Protocol

from aioesphomeapi import api_pb2
from google.protobuf.message import Message

from appliance.audio.volume import Volume

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


MEDIA_FEATURES = (1 << 2) | (1 << 3) | (1 << 9) | (1 << 12) | (1 << 20)
"""VOLUME_SET, VOLUME_MUTE, PLAY_MEDIA, STOP and MEDIA_ANNOUNCE (aioesphomeapi's
MediaPlayerEntityFeature)."""
_IDLE, _PLAYING, _ANNOUNCING = 1, 2, 4
_STOP, _MUTE, _UNMUTE, _VOLUME_UP, _VOLUME_DOWN = 2, 3, 4, 6, 7


class MediaPlayer:
    """The speaker, for Home Assistant: its volume and mute (in software), and media
    played from a URL of Home Assistant's, as WAV in the voice's format (Home Assistant
    converts what it sends to what this lists)."""

    object_id = "media_player"

    def __init__(
        self,
        volume: Volume,
        *,
        sample_rate: int,
        playing: Callable[[], bool],
        play_url: Callable[[str, bool], None],
        stop: Callable[[], None],
    ) -> None:
        self.key = key_of(self.object_id)
        self.volume = volume
        self.sample_rate = sample_rate
        self._playing = playing
        self._play_url = play_url
        self._stop = stop

    def listing(self) -> Message:
        formats = [
            api_pb2.MediaPlayerSupportedFormat(
                format="wav", sample_rate=self.sample_rate, num_channels=1,
                purpose=purpose, sample_bytes=2,
            )
            for purpose in (0, 1)  # default, announcement
        ]  # fmt: skip
        return api_pb2.ListEntitiesMediaPlayerResponse(
            object_id=self.object_id,
            key=self.key,
            name="Media player",
            supports_pause=False,
            supported_formats=formats,
            feature_flags=MEDIA_FEATURES,
        )

    def state(self) -> Message:
        return api_pb2.MediaPlayerStateResponse(
            key=self.key,
            state=_PLAYING if self._playing() else _IDLE,
            volume=round(self.volume.level, 3),
            muted=self.volume.muted,
        )

    def command(self, message: Message) -> bool:
        if not isinstance(message, api_pb2.MediaPlayerCommandRequest):
            return False
        if message.has_volume:
            self.volume.set(message.volume)
        if message.has_command:
            if message.command == _MUTE:
                self.volume.mute(True)
            elif message.command == _UNMUTE:
                self.volume.mute(False)
            elif message.command in (_VOLUME_UP, _VOLUME_DOWN):
                step = 0.1 if message.command == _VOLUME_UP else -0.1
                self.volume.set(self.volume.level + step)
            elif message.command == _STOP:
                self._stop()
            else:
                _LOGGER.info("media player command %d is not supported", message.command)
        if message.has_media_url:
            self._play_url(message.media_url, message.has_announcement and message.announcement)
        return True


class Lamp(Protocol):
    """The status light (appliance.actions.gpio.StatusLight) as Home Assistant turns it."""

    lit: bool
    """True: it follows the appliance's state; False: it stays dark."""


_ON_OFF = 1  # ColorMode.COLOR_MODE_ON_OFF


class StatusLightSwitch:
    """The status light as a light that Home Assistant turns off (dark at night) and on
    (it shows listening, thinking, speaking, muted again). Listed only when the
    appliance has one (`[actions.status_light]`)."""

    object_id = "status_light"

    def __init__(self, lamp: Lamp, changed: Callable[[], None]) -> None:
        self.key = key_of(self.object_id)
        self._lamp = lamp
        self._changed = changed

    def listing(self) -> Message:
        return api_pb2.ListEntitiesLightResponse(
            object_id=self.object_id,
            key=self.key,
            name="Status light",
            icon="mdi:led-on",
            supported_color_modes=[_ON_OFF],
            entity_category=ENTITY_CATEGORY_CONFIG,
        )

    def state(self) -> Message:
        return api_pb2.LightStateResponse(key=self.key, state=self._lamp.lit, color_mode=_ON_OFF)

    def command(self, message: Message) -> bool:
        if not isinstance(message, api_pb2.LightCommandRequest):
            return False
        if message.has_state and message.state != self._lamp.lit:
            self._lamp.lit = message.state
            self._changed()
        return True


class AssistState:
    """What the appliance is doing (idle, listening, thinking, speaking, muted), as a
    text sensor: Home Assistant sees it in either mode, and automations can use it."""

    object_id = "assist_state"

    def __init__(self, state: Callable[[], str]) -> None:
        self.key = key_of(self.object_id)
        self._state = state

    def listing(self) -> Message:
        return api_pb2.ListEntitiesTextSensorResponse(
            object_id=self.object_id, key=self.key, name="Assist state", icon="mdi:account-voice"
        )

    def state(self) -> Message:
        return api_pb2.TextSensorStateResponse(key=self.key, state=self._state())

    def command(self, message: Message) -> bool:
        return False  # a sensor takes no commands
