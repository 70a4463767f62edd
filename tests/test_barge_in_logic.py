from __future__ import annotations

import numpy as np

from appliance.audio.format import AudioChunk
from appliance.pipeline.barge_in import (
    StopListener,
    echoes,
    heard_text,
    is_stop_phrase,
    stop_over_echo,
)


def test_stop_phrases_and_requests_that_merely_mention_stop():
    for text in ("Stop.", "okay stop please", "Jarvis, be quiet!", "Never mind.", "Cancel"):
        assert is_stop_phrase(text), text
    for text in ("How do I stop a leak?", "stop the music in the kitchen now please", "", "Paris"):
        assert not is_stop_phrase(text), text


def test_its_own_words_heard_back_are_recognised():
    reply = "The capital of France is Paris, a city on the Seine."
    assert echoes("capital of France is Paris", reply)
    assert not echoes("stop", reply)
    assert not echoes("what about Germany", reply)


def test_heard_text_cuts_where_playback_stopped():
    sentences = [("First sentence here.", 1.0), ("Second one has five words.", 2.0)]
    assert heard_text(sentences, 0.0) == ""
    assert heard_text(sentences, 1.0) == "First sentence here."
    assert heard_text(sentences, 2.0) == "First sentence here. Second one …"
    assert heard_text(sentences, 9.0) == "First sentence here. Second one has five words."


def test_stop_listener_returns_a_short_burst_after_a_gap():
    listener = StopListener()
    chunk = AudioChunk(np.ones(1280, np.int16), 0.0)
    results = [listener.feed(chunk, p) for p in (0, 1, 1, 1, 0, 0, 0, 0)]
    bursts = [r for r in results if r is not None]
    assert len(bursts) == 1 and len(bursts[0]) == 1280 * 8  # one quiet chunk of lead-in
    # a click (one voiced chunk) is not worth transcribing
    assert all(listener.feed(chunk, p) is None for p in (1, 0, 0, 0, 0, 0))


def test_a_stop_with_its_own_voice_leaking_around_it():
    reply = "The moon is a celestial body that orbits the Earth."
    assert stop_over_echo("Stop. The moon is a", reply)
    assert stop_over_echo("orbits the earth, stop!", reply)
    assert not stop_over_echo("the moon is a celestial body", reply)
    assert not stop_over_echo("stop the music in the kitchen", reply)
    assert stop_over_echo("It's time. Stop.", reply)  # echo misheard, then the stop


def test_a_burst_the_echo_canceller_mostly_removed_is_its_own_echo():
    listener = StopListener(min_kept_db=-6.0)
    mic = np.full(1280, 4000, np.int16)
    residual = AudioChunk(np.full(1280, 800, np.int16), 0.0)  # -14 dB: echo it cancelled
    results = [listener.feed(residual, p, mic) for p in (1, 1, 1, 0, 0, 0, 0)]
    assert all(r is None for r in results)
    voice = AudioChunk(np.full(1280, 3500, np.int16), 0.0)  # -1 dB: a new voice
    results = [listener.feed(voice, p, mic) for p in (1, 1, 1, 0, 0, 0, 0)]
    assert any(r is not None for r in results)


def test_playback_log_window_lines_up_with_the_clock():
    from appliance.audio.sinks import PlaybackLog

    log = PlaybackLog()
    for i in range(10):  # 10 blocks of 20 ms from t=100.0, block i filled with i+1
        log.add(100.0 + i * 0.02, np.full(320, i + 1, np.int16))
    window = log.window(100.1, 1280)  # the 80 ms up to t=100.1, i.e. blocks 1..4
    assert window[:320].tolist() == [2] * 320 and window[-320:].tolist() == [5] * 320
    before = log.window(100.01, 1280)  # 70 ms before playback, 10 ms of block 0
    assert (before[:1120] == 0).all() and (before[1120:] == 1).all()
