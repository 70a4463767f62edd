"""End to end with the real engines and the real models prepared by ./setup.sh, on speech
the tests synthesise themselves (Piper, and Debian's espeak-ng as a second voice)."""

from __future__ import annotations

import asyncio
import dataclasses
import wave

import numpy as np
import pytest

from appliance import events as ev
from appliance.audio.format import float_to_int16, resample
from appliance.audio.sinks import RecordingSink
from appliance.audio.sources import ArraySource, WavFileSource
from appliance.config import AppConfig, ConversationConfig
from appliance.engines import load_engines, pipeline_settings
from appliance.pipeline import Engines, Pipeline
from appliance.testing.speech import add_noise, compose, espeak_phrase, tts_phrase
from tests.fakes import ANSWERED_TURN_EVENTS, Recorder, repeatable_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def config() -> AppConfig:
    return repeatable_config()


@pytest.fixture(scope="module")
def engines(config: AppConfig) -> Engines:
    return load_engines(config)


@pytest.fixture(scope="module")
def question(engines: Engines) -> np.ndarray:
    return tts_phrase(engines.tts, "What is the capital of France?")


@pytest.fixture(scope="module")
def wake_phrase(engines: Engines) -> np.ndarray:
    return tts_phrase(engines.tts, "Hey Jarvis.")


def listen(engines: Engines, config: AppConfig, source) -> tuple[list, Recorder, RecordingSink]:
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    sink = RecordingSink()

    async def main():
        async with Pipeline(engines, sink, bus, pipeline_settings(config)) as pipeline:
            return await pipeline.run(source)

    return asyncio.run(main()), recorder, sink


def words(text: str) -> set[str]:
    return set("".join(c if c.isalnum() else " " for c in text.lower()).split())


def test_wake_and_question_give_a_transcript_a_reply_and_reply_audio(
    engines, config, wake_phrase, question
):
    recording = add_noise(compose(0.5, wake_phrase, 0.4, question, 1.5))
    results, recorder, sink = listen(engines, config, ArraySource(recording))
    assert len(recorder.of("wake")) == 1
    assert recorder.of("wake")[0].wake_word == "hey_jarvis"
    transcript = recorder.of("transcript")[0].text
    assert {"capital", "france"} <= words(transcript), transcript
    assert "jarvis" not in words(transcript)
    assert results[0].outcome == "replied" and results[0].reply.strip()
    assert recorder.of("reply")[0].text == results[0].reply
    assert sink.seconds > 0.5
    audio, rate = sink.audio()
    assert rate == engines.tts.sample_rate and np.abs(audio).max() > 1000
    types = recorder.types()
    for kind in ANSWERED_TURN_EVENTS:
        assert kind in types, (kind, types)


def test_a_second_voice_without_pause_after_the_wake_word(engines, config):
    recording = add_noise(compose(0.5, espeak_phrase("Hey Jarvis, what time is it in Paris?"), 1.5))
    results, recorder, _ = listen(engines, config, ArraySource(recording))
    assert len(recorder.of("wake")) == 1
    transcript = recorder.of("transcript")[0].text
    assert {"time", "paris"} <= words(transcript), transcript


def test_the_same_request_without_the_wake_phrase_is_ignored(engines, config, question):
    recording = add_noise(compose(0.5, question, 0.5, question, 1.0))
    results, recorder, sink = listen(engines, config, ArraySource(recording))
    assert recorder.of("wake") == [] and results == [] and sink.blocks == []


def test_two_turns_in_one_file_give_two_replies(engines, wake_phrase, question):
    config = AppConfig(conversation=ConversationConfig(follow_up_seconds=0,
                                                       question_follow_up_seconds=0))  # fmt: skip
    second = tts_phrase(engines.tts, "Tell me a joke.")
    recording = add_noise(
        compose(0.5, wake_phrase, 0.4, question, 2.0, wake_phrase, 0.4, second, 1.5)
    )
    results, recorder, _ = listen(engines, config, ArraySource(recording))
    assert [r.outcome for r in results] == ["replied", "replied"]
    assert [e.turn for e in recorder.of("reply")] == [1, 2]
    assert "joke" in words(results[1].transcript)
    wakes = recorder.of("wake")
    assert wakes[0].stream_time < 2.0 < wakes[1].stream_time


def test_a_44k1_stereo_24bit_file_works(tmp_path, engines, config, wake_phrase, question):
    mono = add_noise(compose(0.5, wake_phrase, 0.4, question, 1.5)).astype(np.float32) / 32768
    hi = resample(mono, 16000, 44100)
    stereo = np.stack([hi, hi * 0.8], axis=1)
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(float_to_int16(stereo).tobytes())
    results, recorder, _ = listen(engines, config, WavFileSource(path))
    assert results and results[0].outcome == "replied"
    assert {"capital", "france"} <= words(results[0].transcript)


def test_a_follow_up_without_the_wake_word_is_answered_in_context(engines, config, wake_phrase,
                                                                  question):  # fmt: skip
    follow_up = tts_phrase(engines.tts, "And of Germany?")
    recording = add_noise(compose(0.5, wake_phrase, 0.4, question, 1.2, follow_up, 1.5))
    always = dataclasses.replace(config.conversation, follow_up="always")  # "Paris." asks nothing
    config = dataclasses.replace(config, conversation=always)
    results, recorder, _ = listen(engines, config, ArraySource(recording))
    assert len(recorder.of("wake")) == 1
    assert [r.outcome for r in results] == ["replied", "replied"]
    assert "germany" in words(results[1].transcript)
    assert "berlin" in words(results[1].reply), results[1].reply


def test_the_repeatable_voice_says_a_text_the_same_way_twice(engines: Engines) -> None:
    """`tts.vary = false` (the tests' config) is what keeps these tests' hearing steady;
    Piper's default voice draws new noise for every saying."""
    from appliance.tts.piper import PiperTts

    text = "Set a timer for ten minutes."
    assert np.array_equal(engines.tts.synthesize(text), engines.tts.synthesize(text))
    varying = PiperTts(engines.tts.voice_path)
    assert not np.array_equal(varying.synthesize(text), varying.synthesize(text))
