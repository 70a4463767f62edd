"""Home Assistant's native API, served by the appliance and driven by `aioesphomeapi`'s
APIClient (the client Home Assistant uses), over loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
from aioesphomeapi import (
    APIClient,
    APIConnectionError,
    InvalidEncryptionKeyAPIError,
    LightInfo,
    MediaPlayerCommand,
    MediaPlayerEntityFeature,
    MediaPlayerEntityState,
    MediaPlayerInfo,
    MediaPlayerState,
    RequiresEncryptionAPIError,
    SelectInfo,
    SelectState,
    SwitchInfo,
    SwitchState,
    TextSensorInfo,
    TextSensorState,
    VoiceAssistantEventType,
    VoiceAssistantFeature,
    VoiceAssistantTimerEventType,
    api_pb2,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.audio.sources import ArraySource
from appliance.audio.volume import Volume, VolumeSink
from appliance.audio.wav import wav_bytes
from appliance.config import AppConfig, WakeConfig
from appliance.errors import ConfigError
from appliance.satellite.build import satellite_for
from appliance.satellite.entities import SENSITIVITY
from appliance.satellite.frames import FrameDecoder, FrameError, encode_frame, varint
from appliance.satellite.messages import encode
from appliance.sections.satellite import SatelliteConfig
from appliance.sections.web import WebConfig
from appliance.testing.media import MediaServer
from tests.fakes import appliance, loud, make_pipeline, quiet, request


class _House:
    """A pipeline (fake engines) with its satellite, and the wake threshold it sets."""

    def __init__(
        self, transcripts=(), replies=(), *, data=None, lamp=None, wake=0.5, **satellite: object
    ) -> None:
        made = make_pipeline(list(transcripts), list(replies))
        self.pipeline, self.recorder, self.recording, self.tts, self.llm = made
        self.threshold = 0.5
        options = {"host": "127.0.0.1", "port": 0, "mdns": False,
                   "plaintext": "encryption_key" not in satellite, **satellite}  # fmt: skip
        self.config = AppConfig(
            satellite=SatelliteConfig(enabled=True, **options),  # type: ignore[arg-type]
            web=WebConfig(device_name="Kitchen Speaker"),
            wake=WakeConfig(threshold=wake),
        )
        self.data = data or Path(tempfile.mkdtemp())  # Home Assistant's settings are kept

        def set_threshold(value: float) -> bool:
            self.threshold = value
            return True

        self.volume = Volume()
        self.pipeline.sink = self.sink = VolumeSink(self.pipeline.sink, self.volume)
        self.server = satellite_for(
            self.config,
            self.pipeline,
            self.pipeline.bus,
            wake_threshold=lambda: self.threshold,
            set_wake_threshold=set_threshold,
            volume=self.volume,
            sample_rate=16_000,
            data=self.data,
            status_light=lamp,
        )

    async def __aenter__(self) -> _House:
        await self.pipeline.__aenter__()
        await self.server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.__aexit__(*exc)
        await self.pipeline.__aexit__(*exc)

    @contextlib.asynccontextmanager
    async def client(self, key: str | None = None):
        client = APIClient("127.0.0.1", self.server.port, None, client_info="test", noise_psk=key)
        await asyncio.wait_for(client.connect(login=True), 10)
        try:
            yield client
        finally:
            await client.disconnect()

    async def raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.server.port)


async def _closed(reader: asyncio.StreamReader, within: float = 5.0) -> bool:
    """The server closed the connection (whatever it sent first is read and dropped)."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def _sync(test):
    """Run an async test in its own event loop (as the rest of the suite does)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return run


def _hello() -> bytes:
    return encode(api_pb2.HelloRequest(client_info="raw", api_version_major=1))


@_sync
async def test_home_assistant_s_client_connects_and_reads_the_device():
    async with _House() as house, house.client() as client:
        info = await client.device_info()
        assert info.name == "kitchen-speaker" and info.friendly_name == "Kitchen Speaker"
        assert len(info.mac_address.split(":")) == 6
        assert info.manufacturer == "voice-appliance" and info.project_version
        assert client.api_version is not None and client.api_version.major == 1


@_sync
async def test_it_lists_the_mute_switch_and_the_wake_word_sensitivity():
    async with _House() as house, house.client() as client:
        entities, services = await client.list_entities_services()
        switches = [e for e in entities if isinstance(e, SwitchInfo)]
        selects = [e for e in entities if isinstance(e, SelectInfo)]
        assert [s.object_id for s in switches] == ["mute"] and services == []
        assert [s.name for s in selects] == ["Wake word sensitivity"]
        assert selects[0].options == list(SENSITIVITY)
        assert not [e for e in entities if isinstance(e, LightInfo)]  # no status light here
        [sensor] = [e for e in entities if isinstance(e, TextSensorInfo)]
        assert sensor.name == "Assist state"
        states: asyncio.Queue[object] = asyncio.Queue()
        client.subscribe_states(states.put_nowait)

        async def shown(wanted: str) -> None:
            while True:
                state = await asyncio.wait_for(states.get(), 5)
                if isinstance(state, TextSensorState) and state.state == wanted:
                    return

        await shown("idle")
        house.pipeline.set_muted(True, by="button")
        await shown("muted")


def _status_light():
    from gpiozero.pins.mock import MockFactory

    from appliance.actions.gpio import StatusLight
    from appliance.sections.devices import StatusLightConfig

    factory = MockFactory()
    return StatusLight(StatusLightConfig(pin=23), factory), factory.pin(23)


@_sync
async def test_home_assistant_turns_the_status_light_off_and_it_stays_dark():
    lamp, pin = _status_light()
    house = _House(lamp=lamp)
    house.pipeline.bus.subscribe(lamp)
    async with house, house.client() as client:
        entities, _ = await client.list_entities_services()
        [light] = [e for e in entities if isinstance(e, LightInfo)]
        assert light.object_id == "status_light" and light.name == "Status light"
        house.pipeline.set_muted(True, by="button")
        assert pin.state  # muted shows (a blink starts lit)
        states: asyncio.Queue[object] = asyncio.Queue()
        client.subscribe_states(states.put_nowait)
        client.light_command(light.key, state=False)
        while lamp.lit:
            await asyncio.wait_for(states.get(), 5)
        await asyncio.sleep(0.3)  # the blink's thread has stopped
        assert not pin.state
        house.pipeline.set_muted(False, by="button")
        house.pipeline.set_muted(True, by="button")
        assert not pin.state  # dark whatever the state
        client.light_command(light.key, state=True)
        while not lamp.lit:
            await asyncio.wait_for(states.get(), 5)
        assert pin.state  # it shows the state again
    lamp.close()


@_sync
async def test_what_home_assistant_set_is_kept_across_a_restart_and_the_config_wins_later():
    lamp, _ = _status_light()
    house = _House(lamp=lamp)
    async with house, house.client() as client:
        entities, _ = await client.list_entities_services()
        player = next(e for e in entities if isinstance(e, MediaPlayerInfo))
        select = next(e for e in entities if isinstance(e, SelectInfo))
        light = next(e for e in entities if isinstance(e, LightInfo))
        states: asyncio.Queue[object] = asyncio.Queue()
        client.subscribe_states(states.put_nowait)
        client.media_player_command(player.key, volume=0.3)
        client.media_player_command(player.key, command=MediaPlayerCommand.MUTE)
        client.select_command(select.key, "Very sensitive")
        client.light_command(light.key, state=False)
        while lamp.lit or house.threshold != 0.35 or not house.volume.muted:
            await asyncio.wait_for(states.get(), 5)  # each command is followed by its state
    lamp.close()
    lamp, _ = _status_light()
    again = _House(data=house.data, lamp=lamp)  # the restart: the same data directory
    assert again.volume.level == pytest.approx(0.3) and again.volume.muted
    assert again.threshold == 0.35 and not lamp.lit
    lamp.close()
    changed = _House(data=house.data, wake=0.6)  # the config's threshold changed since
    assert changed.threshold == 0.5  # untouched: the config's 0.6 applies, as the app loads it
    (house.data / "satellite.json").write_text("{not json")
    broken = _House(data=house.data)  # a broken file: Home Assistant's settings start afresh
    assert broken.volume.level == 1.0 and not broken.volume.muted


@_sync
async def test_muting_from_home_assistant_mutes_and_a_mute_elsewhere_is_shown_there():
    async with _House() as house, house.client() as client:
        entities, _ = await client.list_entities_services()
        mute = next(e for e in entities if isinstance(e, SwitchInfo))
        states: asyncio.Queue[object] = asyncio.Queue()
        client.subscribe_states(states.put_nowait)

        async def mute_state() -> bool:
            while True:
                state = await asyncio.wait_for(states.get(), 5)
                if isinstance(state, SwitchState) and state.key == mute.key:
                    return state.state

        assert await mute_state() is False
        client.switch_command(mute.key, True)
        assert await mute_state() is True
        assert house.pipeline.muted
        assert [e.by for e in house.recorder.of("muted")] == ["home_assistant"]
        house.pipeline.set_muted(False, by="button")  # the button on the box
        assert await mute_state() is False


@_sync
async def test_home_assistant_sets_the_wake_word_sensitivity():
    async with _House() as house, house.client() as client:
        entities, _ = await client.list_entities_services()
        select = next(e for e in entities if isinstance(e, SelectInfo))
        states: asyncio.Queue[object] = asyncio.Queue()
        client.subscribe_states(states.put_nowait)
        client.select_command(select.key, "Very sensitive")
        while True:
            state = await asyncio.wait_for(states.get(), 5)
            if isinstance(state, SelectState) and state.state == "Very sensitive":
                break
        assert house.threshold == SENSITIVITY["Very sensitive"]
        client.select_command(select.key, "Extremely sensitive")  # no such option
        await asyncio.sleep(0.2)
        assert house.threshold == SENSITIVITY["Very sensitive"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("an oversized frame", b"\x00" + varint(70_000) + varint(1) + b"x" * 100),
        ("a type no message has", encode_frame(9_999, b"")),
        ("a request before Hello", encode(api_pb2.DeviceInfoRequest())),
        ("a payload that is no message", encode_frame(1, b"\xff\xff\xff")),
        ("Hello twice", _hello() + _hello()),
        ("an encrypted client", b"\x01\x00\x00"),
    ],
)
@_sync
async def test_bad_input_closes_that_connection_and_the_appliance_goes_on(name, data, caplog):
    caplog.set_level(logging.WARNING, logger="appliance.satellite")
    async with _House() as house:
        reader, writer = await house.raw()
        writer.write(data)
        await writer.drain()
        assert await _closed(reader), name
        writer.close()
        assert any("disconnected" in r.getMessage() for r in caplog.records), name
        async with house.client() as client:  # the next client is served
            assert (await client.device_info()).name == "kitchen-speaker"


@_sync
async def test_a_client_that_never_says_hello_is_disconnected(caplog):
    caplog.set_level(logging.WARNING, logger="appliance.satellite")
    async with _House(hello_timeout_seconds=0.5) as house:
        reader, writer = await house.raw()
        assert await _closed(reader, within=3.0)
        writer.close()
        assert any("said no Hello" in r.getMessage() for r in caplog.records)


@_sync
async def test_twenty_clients_at_once_are_refused_past_the_limit(caplog):
    caplog.set_level(logging.WARNING, logger="appliance.satellite")
    async with _House(max_clients=3) as house:
        connections = [await house.raw() for _ in range(20)]
        for _, writer in connections:
            writer.write(_hello())
        refused = [await _closed(reader, within=1.0) for reader, _ in connections]
        assert sum(refused) == 17 and refused[:3] == [False] * 3
        assert sum("refused a native API client" in r.getMessage() for r in caplog.records) == 17
        for _, writer in connections:
            writer.close()
        await asyncio.sleep(0.1)
        async with house.client() as client:  # the slots are free again
            assert (await client.device_info()).name == "kitchen-speaker"


KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()


@_sync
async def test_with_a_key_the_api_is_encrypted_and_home_assistant_s_client_uses_it():
    async with _House(encryption_key=KEY) as house, house.client(KEY) as client:
        info = await client.device_info()
        assert info.name == "kitchen-speaker" and info.api_encryption_supported
        entities, _ = await client.list_entities_services()
        mute = next(e for e in entities if isinstance(e, SwitchInfo))
        muted = asyncio.Event()
        house.pipeline.bus.subscribe(lambda e: muted.set() if e.type == "muted" else None)
        client.switch_command(mute.key, True)
        await asyncio.wait_for(muted.wait(), 5)
        assert house.pipeline.muted


@_sync
async def test_a_wrong_key_or_none_is_refused_with_the_reason(caplog):
    caplog.set_level(logging.WARNING, logger="appliance.satellite")
    async with _House(encryption_key=KEY) as house:
        with pytest.raises(InvalidEncryptionKeyAPIError):
            async with house.client(OTHER_KEY):
                pass
        with pytest.raises(RequiresEncryptionAPIError):
            async with house.client(None):
                pass
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert "encryption key is not this satellite's" in messages
        assert "a plaintext client" in messages
        async with house.client(KEY) as client:  # the right key still gets in
            assert (await client.device_info()).name == "kitchen-speaker"


@_sync
async def test_an_encrypting_client_is_told_the_satellite_is_plaintext(caplog):
    caplog.set_level(logging.WARNING, logger="appliance.satellite")
    async with _House() as house:
        with pytest.raises(APIConnectionError):
            async with house.client(KEY):
                pass
        assert any("encrypted (Noise)" in r.getMessage() for r in caplog.records)


def test_a_key_that_is_no_key_is_refused_by_the_config():
    with pytest.raises(ConfigError, match="appliance satellite key"):
        SatelliteConfig(encryption_key="not a key")
    with pytest.raises(ConfigError, match="32 bytes"):
        SatelliteConfig(encryption_key=base64.b64encode(b"short").decode())
    assert SatelliteConfig(encryption_key=KEY).encryption_key == KEY


@_sync
async def test_the_status_page_says_whether_home_assistant_is_connected():
    from appliance.web.status import StatusTracker, status_snapshot

    house = _House()
    tracker = StatusTracker()
    house.pipeline.bus.subscribe(tracker)  # as the page does, before the API is served
    async with house:

        def shown() -> dict:
            return status_snapshot(tracker, house.config, started=0.0)["home_assistant"]

        assert shown() == {"served": True, "enabled": True, "port": house.server.port,
                           "encrypted": False, "error": "", "clients": []}  # fmt: skip
        gone = asyncio.Event()
        house.pipeline.bus.subscribe(
            lambda e: gone.set() if e.type == "satellite_connection" and not e.connected else None
        )
        async with house.client():
            assert shown()["clients"] == ["test"]
            [event] = house.recorder.of("satellite_connection")
            assert event.connected and event.client == "test" and event.clients == 1
        await asyncio.wait_for(gone.wait(), 5)
        assert shown()["clients"] == []
        assert house.recorder.of("satellite_connection")[-1].clients == 0


def test_the_config_page_turns_the_satellite_on_with_a_key_it_never_shows(tmp_path):
    from appliance.config import load_config
    from appliance.web.settings import ConfigStore, public_config

    path = tmp_path / "config.toml"
    store = ConfigStore(path)
    wanted = {"satellite.enabled": "on", "satellite.mode": "home_assistant",
              "satellite.encryption_key": KEY}  # fmt: skip
    typed, errors = store.validate(AppConfig(), wanted)
    assert errors == {}
    store.save(AppConfig(), typed, store.version())
    saved = load_config(path).satellite
    assert saved.enabled and saved.mode == "home_assistant" and saved.encryption_key == KEY
    assert "encryption_key" not in public_config(load_config(path))["satellite"]
    _, errors = store.validate(load_config(path), {"satellite.encryption_key": "nope",
                                                   "satellite.mode": "cloud"})  # fmt: skip
    assert "appliance satellite key" in errors["satellite.encryption_key"]
    assert "not allowed" in errors["satellite.mode"]
    typed, errors = store.validate(load_config(path), {"satellite.encryption_key": ""})
    assert typed == {} and errors == {}  # empty keeps the stored key


def test_appliance_satellite_key_makes_a_key_the_config_takes(tmp_path):
    made = appliance("satellite", "key")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert SatelliteConfig(encryption_key=key).encryption_key == key
    config = tmp_path / "config.toml"
    config.write_text(f'[satellite]\nenabled = true\nencryption_key = "{key}"\n')
    status = appliance("--config", str(config), "satellite", "status")
    assert status.returncode == 0
    assert "6053, local mode, encrypted with satellite.encryption_key" in status.stdout
    config.write_text("[satellite]\n")  # no key: the one made here is shown to the owner
    made = appliance("--config", str(config), "satellite", "status")
    assert made.returncode == 0 and "a key made on first start" in made.stdout
    config.write_text('[satellite]\nencryption_key = "nope"\n')
    refused = appliance("--config", str(config), "satellite", "status")
    assert refused.returncode == 2 and "appliance satellite key" in refused.stderr


@_sync
async def test_the_app_serves_the_api_only_where_asked_and_enabled():
    from appliance.app import App, Parts
    from appliance.satellite.keys import key_file

    pipeline, *_ = make_pipeline([], [])
    local = {"host": "127.0.0.1", "port": 0, "mdns": False}  # the defaults, but on loopback
    config = AppConfig(satellite=SatelliteConfig(**local))  # type: ignore[arg-type]
    data = Path(tempfile.mkdtemp())
    bare = Parts(actions=False, vision=False, data_dir=data)
    served = Parts(actions=False, vision=False, satellite=True, data_dir=data)
    args = (pipeline.engines, pipeline.sink, pipeline.bus)
    async with App(config, *args, parts=bare) as app:
        assert app.satellite is None
    off = AppConfig(satellite=SatelliteConfig(enabled=False))
    async with App(off, *args, parts=served) as app:
        assert app.satellite is None
    async with App(config, *args, parts=served) as app:  # on by default, encrypted
        key = key_file(data).read_text().strip()
        assert oct(key_file(data).stat().st_mode & 0o777) == "0o600"
        client = APIClient("127.0.0.1", app.satellite.port, None, client_info="test")
        with pytest.raises(RequiresEncryptionAPIError):
            await asyncio.wait_for(client.connect(login=True), 10)
        client = APIClient("127.0.0.1", app.satellite.port, None, client_info="test",
                           noise_psk=key)  # fmt: skip
        await asyncio.wait_for(client.connect(login=True), 10)
        assert (await client.device_info()).mac_address
        await client.disconnect()
    async with App(config, *args, parts=served) as app:  # the same key after a restart
        assert app.satellite.encrypted and key_file(data).read_text().strip() == key


@_sync
async def test_a_key_that_cannot_be_kept_or_a_taken_port_leaves_the_api_unserved(caplog):
    from appliance.app import App, Parts
    from appliance.web.status import StatusTracker, status_snapshot

    pipeline, *_ = make_pipeline([], [])
    tracker = StatusTracker()
    pipeline.bus.subscribe(tracker)
    args = (pipeline.engines, pipeline.sink, pipeline.bus)
    data = Path(tempfile.mkdtemp())
    (data / "satellite.key.new").mkdir()  # the key cannot be written
    config = AppConfig(satellite=SatelliteConfig(host="127.0.0.1", port=0, mdns=False))
    async with App(config, *args, parts=Parts(actions=False, vision=False, satellite=True,
                                              data_dir=data)) as app:  # fmt: skip
        assert not app.satellite.serving  # never plaintext instead
        shown = status_snapshot(tracker, config, started=0.0)["home_assistant"]
        assert not shown["served"] and "no encryption key can be kept" in shown["error"]
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    config = AppConfig(satellite=SatelliteConfig(host="127.0.0.1", port=port, mdns=False,
                                                 plaintext=True))  # fmt: skip
    try:
        async with App(config, *args, parts=Parts(actions=False, vision=False,
                                                  satellite=True)) as app:  # fmt: skip
            assert not app.satellite.serving and app.pipeline.engines  # it goes on
            shown = status_snapshot(tracker, config, started=0.0)["home_assistant"]
            assert f"cannot listen on 127.0.0.1:{port}" in shown["error"]
            assert "satellite.port" in shown["error"]
    finally:
        taken.close()
    assert "native API is not served" in caplog.text


def _tone(seconds: float, rate: int, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * level * 32767).astype(np.int16)


CHIME = _tone(0.25, 16_000)
MESSAGE = _tone(1.0, 22_050)


@_sync
async def test_home_assistant_s_announcement_is_played_with_its_chime():
    files = {"/chime.wav": wav_bytes(CHIME, 16_000), "/tts/dinner.wav": wav_bytes(MESSAGE, 22_050)}
    with MediaServer(files) as media:
        async with _House() as house, house.client() as client:
            info = await client.device_info()
            assert info.voice_assistant_feature_flags & VoiceAssistantFeature.ANNOUNCE
            done = await client.send_voice_assistant_announcement_await_response(
                f"{media.base}/tts/dinner.wav", 10, text="Dinner is ready.",
                preannounce_media_id=f"{media.base}/chime.wav",
            )  # fmt: skip
    assert done.success
    assert [(len(b), rate) for b, rate in house.recording.blocks] == [
        (len(CHIME), 16_000), (len(MESSAGE), 22_050)
    ]  # fmt: skip
    difference = house.recording.blocks[1][0].astype(int) - MESSAGE.astype(int)
    assert np.abs(difference).max() <= 1  # the same samples, through float and back
    assert [e.text for e in house.recorder.of("announcement")] == ["Dinner is ready."]
    assert house.tts.spoken == []  # Home Assistant's voice, not ours


@pytest.mark.parametrize(
    ("why", "path", "host"),
    [
        ("a URL on another address", "/tts/dinner.wav", "127.0.0.2"),
        ("a file that is not there", "/tts/gone.wav", "127.0.0.1"),
        ("a file that is no WAV", "/tts/page.html", "127.0.0.1"),
        ("a redirect to another address", "/tts/moved.wav", "127.0.0.1"),
    ],
)
@_sync
async def test_an_announcement_that_cannot_be_had_is_said_in_our_voice_and_reported(
    why, path, host, caplog
):
    caplog.set_level(logging.WARNING, logger="appliance.satellite")
    files = {"/tts/dinner.wav": wav_bytes(MESSAGE, 22_050), "/tts/page.html": b"<html>"}
    elsewhere = MediaServer(files, host="127.0.0.2")  # never started: must not be asked
    moved = {"/tts/moved.wav": f"{elsewhere.base}/tts/dinner.wav"}
    elsewhere.server.server_close()
    with MediaServer(files, host=host, redirects=moved) as media:
        async with _House() as house, house.client() as client:
            done = await client.send_voice_assistant_announcement_await_response(
                f"{media.base}{path}", 10, text="Dinner is ready."
            )
    assert not done.success, why
    assert house.tts.spoken == ["Dinner is ready."], why
    assert any("was not played" in r.getMessage() for r in caplog.records), why
    if host != "127.0.0.1":
        assert media.hits == []  # never fetched from anyone but the Home Assistant asking


@_sync
async def test_the_media_player_sets_the_volume_mutes_and_plays_a_url():
    with MediaServer({"/song.wav": wav_bytes(MESSAGE, 22_050)}) as media:
        async with _House() as house, house.client() as client:
            entities, _ = await client.list_entities_services()
            [player] = [e for e in entities if isinstance(e, MediaPlayerInfo)]
            assert [f.format for f in player.supported_formats] == ["wav", "wav"]
            assert player.feature_flags & MediaPlayerEntityFeature.MEDIA_ANNOUNCE
            states: asyncio.Queue[MediaPlayerEntityState] = asyncio.Queue()
            client.subscribe_states(
                lambda s: states.put_nowait(s) if isinstance(s, MediaPlayerEntityState) else None
            )

            async def state_where(check) -> MediaPlayerEntityState:
                while not check(state := await asyncio.wait_for(states.get(), 5)):
                    pass
                return state

            assert (await state_where(lambda s: True)).volume == 1.0
            client.media_player_command(player.key, volume=0.5)
            await state_where(lambda s: s.volume == 0.5)
            client.media_player_command(player.key, media_url=f"{media.base}/song.wav",
                                        announcement=True)  # fmt: skip
            await state_where(lambda s: s.state == MediaPlayerState.PLAYING)
            await state_where(lambda s: s.state == MediaPlayerState.IDLE)
            played = house.recording.blocks[-1][0]
            assert abs(int(np.abs(played).max()) - int(np.abs(MESSAGE).max() * 0.25)) <= 2
            client.media_player_command(player.key, command=MediaPlayerCommand.MUTE)
            assert (await state_where(lambda s: s.muted)).volume == 0.5
            assert house.volume.gain == 0.0


class _HomeAssistant:
    """The test's stand-in for Home Assistant's pipeline, on its real client: it takes
    the request's audio and answers with events, as Home Assistant's ESPHome satellite
    does."""

    def __init__(self, client: APIClient, *, take: bool = True) -> None:
        self.client = client
        self.take = take
        self.audio = bytearray()
        self.wake_phrases: list[str | None] = []
        self.ended = asyncio.Event()
        self.answer: list[tuple[VoiceAssistantEventType, dict[str, str]]] = []
        client.subscribe_voice_assistant(
            handle_start=self._start, handle_stop=self._stop, handle_audio=self._audio
        )

    async def _start(self, conversation_id, flags, settings, wake_phrase):
        self.wake_phrases.append(wake_phrase)
        return 0 if self.take else None

    async def _audio(self, data: bytes, data2: bytes | None) -> None:
        self.audio += data

    async def _stop(self, abort: bool) -> None:
        self.ended.set()
        for kind, data in self.answer:
            self.client.send_voice_assistant_event(kind, data)


def _answers(url: str = "", *, error_after_intent: bool = False, words: bool = True):
    E = VoiceAssistantEventType  # noqa: N806
    events = [
        (E.VOICE_ASSISTANT_RUN_START, {}),
        (E.VOICE_ASSISTANT_STT_START, {}),
        (E.VOICE_ASSISTANT_STT_END, {"text": "Turn on the kitchen light"}),
        (E.VOICE_ASSISTANT_INTENT_START, {}),
        (E.VOICE_ASSISTANT_INTENT_END, {"conversation_id": "c1", "continue_conversation": "0"}),
    ]
    if words:
        events.append((E.VOICE_ASSISTANT_TTS_START, {"text": "Turned on the light"}))
    if error_after_intent:
        events.append((E.VOICE_ASSISTANT_ERROR, {"code": "tts-failed", "message": "no TTS"}))
    else:
        events.append((E.VOICE_ASSISTANT_TTS_END, {"url": url}))
    return [*events, (E.VOICE_ASSISTANT_RUN_END, {})]


async def _spoken(house: _House) -> list:
    return await house.pipeline.run(ArraySource(request()))


@_sync
async def test_in_home_assistant_mode_the_request_goes_there_and_its_answer_is_played():
    files = {"/tts/answer.wav": wav_bytes(MESSAGE, 22_050)}
    with MediaServer(files) as media:
        house = _House(mode="home_assistant")
        async with house, house.client() as client:
            info = await client.device_info()
            assert info.voice_assistant_feature_flags & VoiceAssistantFeature.API_AUDIO
            assistant = _HomeAssistant(client)
            assistant.answer = _answers(f"{media.base}/tts/answer.wav")
            await asyncio.sleep(0.2)  # the subscription reaches the appliance
            [result] = await _spoken(house)
    assert assistant.wake_phrases == ["marker"]
    seconds = len(assistant.audio) / 2 / 16_000
    assert 1.0 <= seconds <= 3.0, seconds  # from the wake word to the end of the request
    assert result.outcome == "replied" and result.transcript == "Turn on the kitchen light"
    assert result.reply == "Turned on the light"
    assert len(house.recording.blocks[-1][0]) == len(MESSAGE)  # its voice, played here
    assert house.llm.prompts == [] and house.tts.spoken == []  # nothing answered locally
    assert [e.text for e in house.recorder.of("reply")] == ["Turned on the light"]
    assert house.recorder.of("remote_fallback") == []


@_sync
async def test_a_home_assistant_that_refuses_is_answered_for_here():
    house = _House(["What time is it?"], ["It is noon."], mode="home_assistant")
    async with house, house.client() as client:
        _HomeAssistant(client, take=False)
        await asyncio.sleep(0.2)
        [result] = await _spoken(house)
    assert result.reply == "It is noon." and house.tts.spoken == ["It is noon."]
    [fallback] = house.recorder.of("remote_fallback")
    assert fallback.remote == "home_assistant" and "refused" in fallback.reason


@_sync
async def test_home_assistant_going_away_mid_request_is_answered_here_and_may_come_back():
    files = {"/tts/answer.wav": wav_bytes(MESSAGE, 22_050)}
    with MediaServer(files) as media:
        house = _House(["What time is it?"], ["It is noon."], mode="home_assistant")
        async with house:
            client = APIClient("127.0.0.1", house.server.port, None, client_info="test")
            await client.connect(login=True)

            async def leave(conversation_id, flags, settings, wake_phrase):
                client.force_disconnect()  # gone as soon as the request starts
                return 0

            async def ignore(*args: object) -> None:
                pass

            client.subscribe_voice_assistant(
                handle_start=leave, handle_stop=ignore, handle_audio=ignore
            )
            await asyncio.sleep(0.2)
            async with asyncio.timeout(30):  # no hang
                [result] = await _spoken(house)
            assert result.reply == "It is noon."
            [fallback] = house.recorder.of("remote_fallback")
            assert "gone" in fallback.reason or "went away" in fallback.reason
            async with house.client() as again:  # Home Assistant reconnects: it answers again
                back = _HomeAssistant(again)
                back.answer = _answers(f"{media.base}/tts/answer.wav")
                await asyncio.sleep(0.2)
                [result] = await _spoken(house)
            assert result.reply == "Turned on the light"


@_sync
async def test_after_home_assistant_acted_its_words_are_said_even_without_its_audio():
    house = _House(mode="home_assistant")
    async with house, house.client() as client:
        assistant = _HomeAssistant(client)
        assistant.answer = _answers(error_after_intent=True)
        await asyncio.sleep(0.2)
        [result] = await _spoken(house)
    assert house.tts.spoken == ["Turned on the light"]  # in our voice: never silence
    assert house.llm.prompts == [] and house.recorder.of("remote_fallback") == []


@_sync
async def test_home_assistant_that_understood_but_gave_no_answer_is_not_silence():
    house = _House(mode="home_assistant")
    async with house, house.client() as client:
        assistant = _HomeAssistant(client)
        assistant.answer = _answers(error_after_intent=True, words=False)
        await asyncio.sleep(0.2)
        [result] = await _spoken(house)
    assert result.outcome == "no_reply"
    assert house.tts.spoken == ["Home Assistant gave no answer."]  # not "done": it may not be
    assert house.llm.prompts == [] and house.recorder.of("remote_fallback") == []


@_sync
async def test_an_announcement_that_asks_starts_a_conversation_with_home_assistant():
    files = {"/q.wav": wav_bytes(CHIME, 16_000), "/tts/answer.wav": wav_bytes(MESSAGE, 22_050)}
    with MediaServer(files) as media:
        house = _House(mode="home_assistant")
        async with house, house.client() as client:
            info = await client.device_info()
            assert info.voice_assistant_feature_flags & VoiceAssistantFeature.START_CONVERSATION
            assistant = _HomeAssistant(client)
            assistant.answer = _answers(f"{media.base}/tts/answer.wav")
            await asyncio.sleep(0.2)
            # Someone in the room, listened to live: quiet, then they answer, then quiet.
            room = np.concatenate([quiet(0.8), loud(1.0), quiet(1.6)])
            running = asyncio.create_task(house.pipeline.run(ArraySource(room, realtime=True)))
            await asyncio.sleep(0.2)
            done = await client.send_voice_assistant_announcement_await_response(
                f"{media.base}/q.wav", 10, text="Shall I close the blinds?",
                start_conversation=True,
            )  # fmt: skip
            assert done.success
            [result] = await asyncio.wait_for(running, 15)
    assert assistant.wake_phrases == [None]  # no wake word: Home Assistant's question
    assert len(assistant.audio) / 2 / 16_000 >= 1.0  # the answer went there
    assert result.transcript == "Turn on the kitchen light" and house.llm.prompts == []


@_sync
async def test_home_assistant_s_timers_are_events_here_and_a_finished_one_is_said():
    T = VoiceAssistantTimerEventType  # noqa: N806
    house = _House(mode="home_assistant")
    async with house, house.client() as client:
        info = await client.device_info()
        assert info.voice_assistant_feature_flags & VoiceAssistantFeature.TIMERS
        said = asyncio.Event()
        house.pipeline.bus.subscribe(lambda e: said.set() if e.type == "announcement" else None)
        client.send_voice_assistant_timer_event(T.VOICE_ASSISTANT_TIMER_STARTED, "t1", "pasta",
                                                600, 600, True)  # fmt: skip
        client.send_voice_assistant_timer_event(T.VOICE_ASSISTANT_TIMER_CANCELLED, "t1", "pasta",
                                                600, 540, False)  # fmt: skip
        client.send_voice_assistant_timer_event(T.VOICE_ASSISTANT_TIMER_STARTED, "t2", "", 5, 5,
                                                True)  # fmt: skip
        client.send_voice_assistant_timer_event(T.VOICE_ASSISTANT_TIMER_FINISHED, "t2", "", 5, 0,
                                                False)  # fmt: skip
        await asyncio.wait_for(said.wait(), 5)
    timers = [(e.timer_id, e.state, e.seconds_left) for e in house.recorder.of("remote_timer")]
    assert timers == [("t1", "started", 600), ("t1", "cancelled", 540), ("t2", "started", 5),
                      ("t2", "finished", 0)]  # fmt: skip
    assert house.tts.spoken == ["Your timer is done."]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=1, max_value=50), max_size=8))
def test_the_frame_parser_raises_only_frame_errors_on_any_bytes(data, cuts):
    decoder = FrameDecoder()
    at = 0
    with contextlib.suppress(FrameError):
        for cut in [*cuts, len(data)]:
            for message_type, payload in decoder.feed(data[at : at + cut]):
                assert message_type >= 0 and len(payload) <= decoder.max_frame_bytes
            at += cut


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**21), st.binary(max_size=600)), max_size=6),
    st.integers(min_value=1, max_value=64),
)
def test_frames_come_back_whole_however_the_bytes_are_cut(frames, step):
    stream = b"".join(encode_frame(kind, payload) for kind, payload in frames)
    decoder = FrameDecoder()
    got = []
    for at in range(0, len(stream), step):
        got += decoder.feed(stream[at : at + step])
    assert got == frames


def test_a_paired_browser_sees_the_key_made_here_and_the_token_api_never(tmp_path, monkeypatch):
    from appliance.satellite.keys import key_in_use
    from tests.web_harness import running_web

    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    key = key_in_use(SatelliteConfig())
    with running_web(tmp_path, config_text="") as web:
        client = web.session()
        assert f'<code id="home-assistant-key">{key}</code>' in client.get(web.url + "/").text
        assert key not in client.get(web.url + "/api/status").text
        assert key not in web.session(pair=False).get(web.url + "/").text
    own = f'[satellite]\nencryption_key = "{KEY}"\n'  # the owner's own key is never shown
    with running_web(tmp_path, config_text=own) as web:
        page = web.session().get(web.url + "/").text
        assert "home-assistant-key" not in page and KEY not in page
