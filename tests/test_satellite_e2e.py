"""Home Assistant mode with the real engines: a spoken request, heard by the real wake
word and end of turn, reaches a client acting as Home Assistant (aioesphomeapi's
APIClient, the one Home Assistant uses) as audio whisper can read, and the answer Home
Assistant sends back is played."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aioesphomeapi import APIClient, VoiceAssistantEventType

from appliance import events as ev
from appliance.app import App, Parts
from appliance.audio.format import int16_to_float
from appliance.audio.sinks import RecordingSink
from appliance.audio.sources import ArraySource
from appliance.audio.wav import wav_bytes
from appliance.engines import load_engines, pipeline_settings
from appliance.sections.satellite import SatelliteConfig
from appliance.testing.media import MediaServer
from appliance.testing.speech import add_noise, compose, tts_phrase
from tests.fakes import Recorder, repeatable_config

pytestmark = pytest.mark.e2e
ANSWER = "The kitchen light is on."


@pytest.fixture(scope="module")
def engines():
    return load_engines(repeatable_config())


def test_a_spoken_request_reaches_home_assistant_and_its_answer_is_played(engines):
    E = VoiceAssistantEventType  # noqa: N806
    voice = engines.tts
    answer = voice.synthesize(ANSWER)
    wake, asked = tts_phrase(voice, "Hey Jarvis."), tts_phrase(voice, "Turn on the kitchen light.")
    recording = add_noise(compose(0.5, wake, 0.4, asked, 2.5))
    config = repeatable_config(
        satellite=SatelliteConfig(
            enabled=True,
            host="127.0.0.1",
            port=0,
            mdns=False,
            mode="home_assistant",
            plaintext=True,
        )
    )
    sink = RecordingSink()
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    heard = bytearray()
    phrases: list[str | None] = []

    async def main():
        parts = Parts(actions=False, vision=False, satellite=True)
        settings = pipeline_settings(config)
        with MediaServer({"/answer.wav": wav_bytes(answer, voice.sample_rate)}) as media:
            async with App(config, engines, sink, bus, settings=settings, parts=parts) as app:
                client = APIClient("127.0.0.1", app.satellite.port, None, client_info="HA")
                await client.connect(login=True)

                async def start(conversation_id, flags, audio_settings, wake_phrase):
                    phrases.append(wake_phrase)
                    return 0

                async def audio(data: bytes, data2: bytes | None) -> None:
                    heard.extend(data)

                async def stop(abort: bool) -> None:
                    for kind, data in (
                        (E.VOICE_ASSISTANT_STT_END, {"text": "Turn on the kitchen light."}),
                        (E.VOICE_ASSISTANT_INTENT_END, {"continue_conversation": "0"}),
                        (E.VOICE_ASSISTANT_TTS_START, {"text": ANSWER}),
                        (E.VOICE_ASSISTANT_TTS_END, {"url": f"{media.base}/answer.wav"}),
                        (E.VOICE_ASSISTANT_RUN_END, {}),
                    ):
                        client.send_voice_assistant_event(kind, data)

                client.subscribe_voice_assistant(handle_start=start, handle_stop=stop,
                                                 handle_audio=audio)  # fmt: skip
                await asyncio.sleep(0.3)
                results = await app.pipeline.run(ArraySource(recording))
                await client.disconnect()
                return results

    [result] = asyncio.run(main())
    assert phrases == ["hey jarvis"]
    audio = np.frombuffer(bytes(heard), dtype=np.int16)
    assert 1.0 <= len(audio) / 16_000 <= 5.0
    said = engines.stt.transcribe(int16_to_float(audio)).lower()
    assert "kitchen light" in said, said  # the request itself reached Home Assistant
    assert result.reply == ANSWER and result.transcript == "Turn on the kitchen light."
    played, _ = sink.audio()
    assert len(played) == len(answer)
    assert recorder.of("remote_fallback") == []
