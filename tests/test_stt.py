"""whisper.cpp's guards against its decoding loop on short requests."""

from __future__ import annotations

import pytest

from appliance.audio.format import int16_to_float
from appliance.config import default_models_dir
from appliance.models.catalog import ModelStore
from appliance.stt.whispercpp import WhisperCppStt, collapse_repeats, max_tokens_for
from appliance.testing.speech import add_noise, compose, espeak_phrase


@pytest.mark.parametrize(
    ("heard", "kept"),
    [
        ("Read this. Read this. Read this. Read this. Read this. Read this", "Read this."),
        ("Hey Jarvis, read this. read this. read this.", "Hey Jarvis, read this."),
        ("one two one two one two three", "one two three"),
        ("Turn on the light. Turn on the light. Turn on the", "Turn on the light."),
        ("Turn it on. Turn it on.", "Turn it on. Turn it on."),  # twice, not cut off
        ("I had had a dog", "I had had a dog"),  # twice is language, not a loop
        ("no no", "no no"),
        ("What is the capital of France?", "What is the capital of France?"),
        ("", ""),
    ],
)
def test_a_run_of_three_or_more_repeats_is_kept_once(heard, kept):
    assert collapse_repeats(heard) == kept


def test_the_token_bound_grows_with_the_audio():
    assert max_tokens_for(8_000) == 16  # a short "stop"
    assert max_tokens_for(16_000 * 15) == 128  # the longest request
    assert max_tokens_for(16_000 * 15) > 4 * 15  # fast speech still fits


@pytest.mark.e2e
def test_a_short_request_that_made_whisper_loop_comes_back_once():
    store = ModelStore(default_models_dir())
    stt = WhisperCppStt(store.path("whisper-tiny.en", "stt"), threads=2)
    audio = add_noise(compose(0.3, espeak_phrase("Read this."), 0.7))
    assert stt.transcribe(int16_to_float(audio)).lower().strip(" .") == "read this"
