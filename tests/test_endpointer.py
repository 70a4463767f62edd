from __future__ import annotations

import numpy as np

from appliance.audio.format import AudioChunk
from appliance.audio.vad import (
    Endpointer,
    EndpointSettings,
    NoSpeech,
    Paused,
    PreRoll,
    SpeechEnded,
    SpeechStarted,
)


def chunks(pattern: str, start: float = 0.0) -> list[tuple[AudioChunk, float]]:
    """'s' = speech chunk, '.' = silence chunk, 80 ms each."""
    out = []
    for i, c in enumerate(pattern):
        samples = np.full(1280, 1000 if c == "s" else 0, dtype=np.int16)
        out.append((AudioChunk(samples, start=start + i * 0.08), 1.0 if c == "s" else 0.0))
    return out


def feed(endpointer: Endpointer, pattern: str, start: float = 0.0) -> list[object]:
    return [r for c, p in chunks(pattern, start) if (r := endpointer.feed(c, p)) is not None]


SETTINGS = EndpointSettings(silence_seconds=0.4, pre_roll_seconds=0.16, min_speech_seconds=0.16)


def test_speech_then_silence_ends_the_utterance_with_pre_roll():
    pre = [c for c, _ in chunks("....", start=-0.32)]
    endpointer = Endpointer(SETTINGS, pre, start=0.0)
    results = feed(endpointer, "..sssss......")
    assert isinstance(results[0], SpeechStarted) and abs(results[0].time - 0.16) < 1e-6
    end = results[1]
    assert isinstance(end, SpeechEnded) and not end.timed_out
    # ends 0.4 s after the last speech chunk (which ended at 0.56 s)
    assert abs(end.end - 0.96) < 1e-6
    seconds = len(end.audio) / 16000
    # pre-roll 0.16 + speech 0.40 + tail 0.3
    assert abs(seconds - 0.86) < 0.01


def test_a_short_pause_does_not_end_the_request():
    endpointer = Endpointer(SETTINGS, [], start=0.0)
    results = feed(endpointer, "sssss...sssss......")
    assert [type(r).__name__ for r in results] == ["SpeechStarted", "SpeechEnded"]


def test_a_click_is_not_speech_and_silence_times_out():
    settings = EndpointSettings(min_speech_seconds=0.16, no_speech_timeout=1.0)
    endpointer = Endpointer(settings, [], start=0.0)
    results = feed(endpointer, "s....s" + "." * 10)
    assert len(results) == 1 and isinstance(results[0], NoSpeech)


def test_endless_speech_is_cut_at_the_maximum():
    settings = EndpointSettings(max_speech_seconds=1.0, min_speech_seconds=0.08)
    endpointer = Endpointer(settings, [], start=0.0)
    results = feed(endpointer, "s" * 30)
    assert isinstance(results[-1], SpeechEnded) and results[-1].timed_out


def test_flush_at_end_of_input():
    endpointer = Endpointer(SETTINGS, [], start=0.0)
    feed(endpointer, "sssss")
    assert isinstance(endpointer.flush(0.4), SpeechEnded)
    assert isinstance(Endpointer(SETTINGS, [], start=0.0).flush(0.1), NoSpeech)


def test_pre_roll_ring_keeps_only_the_latest_audio():
    ring = PreRoll(0.24)
    for chunk, _ in chunks("." * 10):
        ring.append(chunk)
    kept = ring.snapshot()
    assert len(kept) == 4 and kept[-1].start == 9 * 0.08


ASKING = EndpointSettings(
    pause_seconds=0.16, max_pause_seconds=1.0, pre_roll_seconds=0.0, min_speech_seconds=0.16
)


def test_a_pause_is_handed_to_the_judge_and_again_each_time_it_doubles():
    endpointer = Endpointer(ASKING, [], start=0.0, asks_at_pauses=True)
    results = feed(endpointer, "sssss" + "." * 14)
    kinds = [type(r).__name__ for r in results]
    # handed over early at the first silent chunk (to transcribe ahead), asked at 0.16,
    # 0.32 and 0.64 s of silence; ended by itself at the 1.0 s limit
    assert kinds == ["SpeechStarted", "Paused", "Paused", "Paused", "Paused", "SpeechEnded"]
    pauses = [r for r in results if isinstance(r, Paused)]
    assert [(round(p.silence, 2), p.ask) for p in pauses] == [
        (0.08, False), (0.16, True), (0.32, True), (0.64, True)
    ]  # fmt: skip
    assert len({p.last_speech for p in pauses}) == 1


def test_the_judges_end_gives_the_audio_the_pause_showed():
    endpointer = Endpointer(ASKING, [], start=0.0, asks_at_pauses=True)
    paused = feed(endpointer, "sssss..")[-1]
    assert isinstance(paused, Paused)
    ended = endpointer.end(paused.time)
    assert isinstance(ended, SpeechEnded) and not ended.timed_out
    assert np.array_equal(ended.audio, paused.audio)
    assert endpointer.finished and endpointer.feed(chunks("s")[0][0], 1.0) is None


def test_speech_after_a_pause_starts_the_asking_afresh():
    endpointer = Endpointer(ASKING, [], start=0.0, asks_at_pauses=True)
    results = feed(endpointer, "sssss..." + "ssss" + "..")
    pauses = [r for r in results if isinstance(r, Paused) and r.ask]
    assert [round(p.silence, 2) for p in pauses] == [0.16, 0.16]
    assert pauses[1].last_speech > pauses[0].last_speech
    early = [r for r in results if isinstance(r, Paused) and not r.ask]
    assert len(early) == 2  # once per pause, not once per silent chunk
    assert len(pauses[1].audio) > len(pauses[0].audio)


def test_a_failed_judge_falls_back_to_the_fixed_silence():
    settings = EndpointSettings(
        silence_seconds=0.4, pause_seconds=0.16, max_pause_seconds=2.0, min_speech_seconds=0.16
    )
    endpointer = Endpointer(settings, [], start=0.0, asks_at_pauses=True)
    assert isinstance(feed(endpointer, "sssss..")[-1], Paused)
    endpointer.stop_asking()
    results = feed(endpointer, "...", start=0.56)
    assert isinstance(results[-1], SpeechEnded)
    assert abs(results[-1].end - (0.4 + 0.4)) < 0.09


def test_after_a_judged_end_speech_within_the_longest_pause_reopens_the_same_utterance():
    endpointer = Endpointer(ASKING, [], start=0.0, asks_at_pauses=True)
    paused = feed(endpointer, "sssss..")[-1]
    ended = endpointer.end(paused.time)
    heard = [endpointer.hear_more(c, p) for c, p in chunks("...ss", start=paused.time)]
    assert heard == [False, False, False, False, True]  # 160 ms of speech: it went on
    endpointer.reopen()
    results = feed(endpointer, "ss" + "." * 14, start=paused.time + 0.4)
    whole = results[-1]
    assert isinstance(whole, SpeechEnded) and whole.start == ended.start
    assert len(whole.audio) > len(ended.audio)  # both halves, and the pause between


def test_no_reopening_after_the_fixed_silence_or_past_the_longest_pause():
    fixed = Endpointer(SETTINGS, [], start=0.0)
    ended = feed(fixed, "sssss......")[-1]
    assert isinstance(ended, SpeechEnded) and not fixed.may_go_on(ended.end)
    judged = Endpointer(ASKING, [], start=0.0, asks_at_pauses=True)
    paused = feed(judged, "sssss..")[-1]
    judged.end(paused.time)
    last_word = paused.last_speech
    assert judged.may_go_on(last_word + 0.5)
    assert not judged.may_go_on(last_word + ASKING.max_pause_seconds)
