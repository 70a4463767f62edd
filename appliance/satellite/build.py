"""The satellite assembled from the configuration and the running pipeline."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from pathlib import Path

from appliance import events as ev
from appliance.audio.volume import Volume
from appliance.config import AppConfig
from appliance.discovery.mdns import app_version
from appliance.pipeline import Pipeline
from appliance.satellite.announce import Announcer
from appliance.satellite.assist import HomeAssistantPipeline
from appliance.satellite.entities import (
    AssistState,
    Entity,
    Lamp,
    MediaPlayer,
    MuteSwitch,
    StatusLightSwitch,
    WakeSensitivity,
)
from appliance.satellite.keys import key_file, key_in_use
from appliance.satellite.remembered import Remembered, RememberedFile
from appliance.satellite.server import Identity, SatelliteServer
from appliance.satellite.voice import VoiceAssistant
from appliance.sections.web import host_label


def identity_of(config: AppConfig) -> Identity:
    shown = config.web.device_name or socket.gethostname().split(".")[0] or "appliance"
    node = uuid.getnode()  # a network adapter's MAC: what Home Assistant knows it by
    mac = ":".join(f"{(node >> shift) & 0xFF:02X}" for shift in range(40, -1, -8))
    return Identity(
        name=host_label(shown), friendly_name=shown, mac_address=mac, version=app_version()
    )


def satellite_for(
    config: AppConfig,
    pipeline: Pipeline,
    bus: ev.EventBus,
    *,
    wake_threshold: Callable[[], float | None],
    set_wake_threshold: Callable[[float], bool],
    volume: Volume,
    sample_rate: int,
    data: Path | None = None,
    status_light: Lamp | None = None,
) -> SatelliteServer:
    """`data`: where a key made here and Home Assistant's settings are kept (the data
    directory when None). `status_light`: the appliance's, if it has one."""
    server: SatelliteServer

    def play_url(url: str, announcement: bool) -> None:
        if server.commanding is not None:
            voice.play_url(server.commanding, url)

    assist = HomeAssistantPipeline() if config.satellite.mode == "home_assistant" else None
    voice = VoiceAssistant(
        Announcer(pipeline),
        config.wake.model.replace("_", " "),
        lambda: server.states_changed(),
        assist,
    )
    pipeline.remote = assist
    media = MediaPlayer(
        volume,
        sample_rate=sample_rate,
        playing=lambda: voice.playing > 0,
        play_url=play_url,
        stop=lambda: pipeline.interrupt("stop"),
    )
    settings = RememberedFile(data)
    remembered = _restore(settings.load(), config, volume, status_light, set_wake_threshold)

    def keep() -> None:
        remembered.volume, remembered.media_muted = volume.level, volume.muted
        if status_light is not None:
            remembered.status_light = status_light.lit
        settings.save(remembered)

    def set_sensitivity(threshold: float) -> bool:
        remembered.wake_threshold = threshold
        remembered.wake_threshold_over = config.wake.threshold
        applied = set_wake_threshold(threshold)
        keep()
        return applied

    entities: list[Entity] = [
        MuteSwitch(
            lambda: pipeline.muted,
            lambda muted: pipeline.set_muted(muted, by="home_assistant"),
        ),
        WakeSensitivity(wake_threshold, set_sensitivity),
        media,
        AssistState(lambda: pipeline.state or "idle"),
    ]
    if status_light is not None:
        entities.append(StatusLightSwitch(status_light, keep))
    try:
        key, problem = key_in_use(config.satellite, data), ""
    except OSError as err:  # never plaintext instead: not served, and the page says why
        key = ""
        problem = (f"no encryption key can be kept in {key_file(data)} "
                   f"({err.strerror or err})")  # fmt: skip
    server = SatelliteServer(
        config.satellite, identity_of(config), entities, bus, voice, key=key, problem=problem
    )
    volume.watch(server.states_changed)
    volume.watch(keep)
    return server


def _restore(
    remembered: Remembered,
    config: AppConfig,
    volume: Volume,
    status_light: Lamp | None,
    set_wake_threshold: Callable[[float], bool],
) -> Remembered:
    """Apply what Home Assistant set before the restart."""
    if remembered.volume is not None:
        volume.set(remembered.volume)
    if remembered.media_muted is not None:
        volume.mute(bool(remembered.media_muted))
    if remembered.status_light is not None and status_light is not None:
        status_light.lit = bool(remembered.status_light)
    threshold = remembered.wake_threshold
    if threshold is not None:
        if remembered.wake_threshold_over == config.wake.threshold:
            set_wake_threshold(threshold)
        else:  # the config's threshold changed since: the latest change wins
            remembered.wake_threshold = remembered.wake_threshold_over = None
    return remembered
