"""Talking like a person, with the real engines, in real time, in a simulated room: the
speaker's sound comes back into the microphone (EchoRoom) as it would on a real board."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from appliance import events as ev
from appliance.audio.aec import NoEchoCanceller, SpeexEchoCanceller
from appliance.audio.format import PIPELINE_RATE
from appliance.audio.sinks import ClockSink
from appliance.config import AppConfig
from appliance.engines import load_engines, pipeline_settings
from appliance.pipeline import Pipeline
from appliance.testing.echo import EchoRoom
from appliance.testing.speech import add_noise, compose, espeak_phrase, tts_phrase
from tests.fakes import Recorder, repeatable_config

pytestmark = pytest.mark.e2e
MOON = "Tell me three facts about the moon."
LOUD_ECHO_DB = -6.0
"""Its own reply coming back into the microphone, loud: the speaker next to the mic."""
ECHO_DB = -12.0
"""A speaker a hand-width from the mic at a comfortable volume, the user a metre away."""


@pytest.fixture(scope="module")
def engines():
    return load_engines(repeatable_config())


def talk(
    engines, recording, *, echo_canceller, follow_up=0.0, echo_db=ECHO_DB, hold_at=None,
    into_reply=1.0,
):  # fmt: skip
    """`hold_at`: the second of the recording where the user speaks over the reply; the
    room holds it there until the reply has played for `into_reply` seconds, so the words
    land over the reply however long the reply takes to start on this machine."""
    config = AppConfig()
    settings = pipeline_settings(config)
    import dataclasses

    conversation = dataclasses.replace(settings.conversation, follow_up_seconds=follow_up)
    settings = dataclasses.replace(settings, conversation=conversation)
    sink = ClockSink()
    room = EchoRoom(
        recording, sink.log, gain_db=echo_db, hold_at=hold_at, hold_until_played=into_reply
    )
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)

    async def main():
        async with Pipeline(engines, sink, bus, settings, echo=echo_canceller) as pipeline:
            return await pipeline.run(room)

    try:
        return asyncio.run(main()), recorder, room
    finally:
        sink.close()


def seconds(samples) -> float:
    return len(samples) / PIPELINE_RATE


def request(engines, text, tail):
    return add_noise(
        compose(
            0.5, tts_phrase(engines.tts, "Hey Jarvis."), 0.4, tts_phrase(engines.tts, text), tail
        )  # fmt: skip
    )


@pytest.mark.parametrize("canceller", ["speex", "none"])
def test_its_own_reply_in_the_microphone_does_not_wake_or_answer_it(engines, canceller):
    echo = SpeexEchoCanceller() if canceller == "speex" else NoEchoCanceller()
    results, recorder, room = talk(
        engines, request(engines, MOON, 18.0), echo_canceller=echo, echo_db=LOUD_ECHO_DB
    )
    heard = [(r.transcript, r.outcome) for r in results]
    heard += [(e.by, e.heard[-60:]) for e in recorder.of("interrupted")]
    assert room.echo_seconds > 5, ("the reply should have been heard back for a while", heard)
    assert [r.outcome for r in results] == ["replied"], heard
    assert len(recorder.of("wake")) == 1 and recorder.of("interrupted") == []
    assert len(results[0].sentences) >= 2


WAKE_OVER_REPLY_TRIES = 3
"""Rooms the wake-word barge-in test may take: over a reply, this voice's "Hey Jarvis" is
taken about 9 times in 10 (24 of 27 here, with one core kept busy; its score peaked at
0.30-0.98 over what the reply was saying), and what this test checks is what happens
once it is taken. A room where the reply simply played on is tried again."""


def test_saying_the_wake_word_over_a_reply_stops_it_and_the_new_request_is_answered(engines):
    user = espeak_phrase("Hey Jarvis! What is the capital of France?", speed=130)
    asked = request(engines, MOON, 2.0)
    recording = np.concatenate([asked, add_noise(compose(user, 4.0))])
    # A few seconds into the reply: this canceller is cold (a new one, as after a start),
    # and a cold Speex removes only 1-3 dB in the reply's first seconds, where this voice's
    # "Hey Jarvis" over it peaked at 0.35-0.73 and was taken 2 times in 6 (0.99 with a
    # canceller warmed by an earlier reply, as the appliance keeps it). docs/pipeline.md, "The first
    # reply after a start".
    missed = []
    for _ in range(WAKE_OVER_REPLY_TRIES):
        results, recorder, _ = talk(
            engines, recording, echo_canceller=SpeexEchoCanceller(), hold_at=seconds(asked),
            into_reply=4.0,
        )  # fmt: skip
        outcomes = [r.outcome for r in results]
        if outcomes != ["replied"] or recorder.of("interrupted"):
            break
        missed.append([str(e)[:160] for e in recorder.events])
    assert outcomes == ["interrupted", "replied"], (missed, [str(e) for e in recorder.events[-12:]])
    (cut,) = recorder.of("interrupted")
    assert cut.by == "wake" and cut.reaction_seconds < 0.2
    # whisper tiny, hearing the start of the request over the cut-off reply, does not
    # always get every word ("France" → "friends"); the request is still answered.
    assert "capital" in results[1].transcript.lower() and results[1].reply.strip()


def test_saying_stop_over_a_reply_stops_it(engines):
    assert engines.stop is not None, "no stop keyword head: run ./setup.sh (models prepare)"
    # A voice the head never trained on. A lone "Stop!" over the reply is taken about
    # half the time (its score peaks near the 0.97 threshold; docs/pipeline.md, Barge-in), so
    # this checks the mechanics with a two-word stop phrase the head takes reliably.
    user = espeak_phrase("Stop talking!", voice="en-us+m7", speed=150)
    asked = request(engines, MOON, 2.0)
    recording = np.concatenate([asked, add_noise(compose(user, 3.0))])
    results, recorder, room = talk(
        engines, recording, echo_canceller=SpeexEchoCanceller(), hold_at=seconds(asked)
    )
    assert room.held_seconds < 60, "the reply never played for a second in a row"
    assert [r.outcome for r in results] == ["interrupted"], [r.transcript for r in results]
    (cut,) = recorder.of("interrupted")
    assert cut.by == "stop" and cut.reaction_seconds < 0.2
    assert room.echo_seconds > 1, "it should have been talking when it was told to stop"
    # The keyword head heard it, not the speech-to-text check: no transcript of "stop".
    assert [e.text for e in recorder.of("transcript")] == [results[0].transcript]
