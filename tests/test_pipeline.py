"""The pipeline's logic with fake engines passed in: no models, nothing patched."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import numpy as np
import pytest

from appliance import events as ev
from appliance.audio.sinks import ClockSink
from appliance.audio.sources import ArraySource
from appliance.errors import LanguageModelError, SpeechToTextError
from appliance.handlers import Handled
from appliance.pipeline import APOLOGY
from appliance.stt.fake import ScriptedStt
from appliance.tts.fake import ToneTts
from appliance.wake.fake import WAKE_MARKER, mark_wake
from tests.fakes import (
    ANSWERED_TURN_EVENTS,
    loud,
    make_pipeline,
    quiet,
    request,
    wake_chunk,
)


def run(pipeline, samples, *, realtime: bool = False):
    async def main():
        async with pipeline:
            return await pipeline.run(ArraySource(samples, realtime=realtime))

    return asyncio.run(main())


def test_one_turn_publishes_the_events_in_order():
    pipeline, rec, sink, tts, llm = make_pipeline(
        ["What is the capital of France?"], ["Paris is the capital of France. It is lovely."]
    )
    results = run(pipeline, request())
    assert [r.outcome for r in results] == ["replied"]
    types = rec.types()
    expected_order = ANSWERED_TURN_EVENTS
    positions = [types.index(t) for t in expected_order]
    assert positions == sorted(positions), types
    assert [e.text for e in rec.of("reply_sentence")] == [
        "Paris is the capital of France.",
        "It is lovely.",
    ]
    assert tts.spoken == ["Paris is the capital of France.", "It is lovely."]
    assert sink.seconds == pytest.approx(0.1 * 9, abs=0.01)
    assert results[0].reply == "Paris is the capital of France. It is lovely."
    # The LLM got the system prompt, then the transcript.
    assert [(m.role, m.content) for m in llm.prompts[0]] == [
        ("system", "be brief"),
        ("user", "What is the capital of France?"),
    ]
    states = [e.state for e in rec.of("state")]
    assert states[:4] == ["idle", "listening", "thinking", "speaking"] and states[-1] == "idle"


def test_every_event_has_turn_stream_time_and_wall_time_and_serialises():
    pipeline, rec, *_ = make_pipeline(["hello there"], ["Hello to you too."])
    before = time.time()
    run(pipeline, request())
    for event in rec.events:
        data = json.loads(ev.to_json(event))
        assert data["type"] == event.type
        assert {"turn", "stream_time", "wall_time"} <= set(data)
        assert data["wall_time"] >= before
    wake = rec.of("wake")[0]
    end = rec.of("speech_end")[0]
    assert wake.turn == 1 and end.turn == 1
    # Wake marker sits at 0.48 s → detected on the chunk ending 0.56 s.
    assert wake.stream_time == pytest.approx(0.56, abs=0.01)
    # Speech (1 s from 0.88 s) ends at 1.88 s; + 0.5 s silence, on a chunk boundary.
    assert 2.3 <= end.stream_time <= 2.5
    assert rec.of("speech_start")[0].stream_time == pytest.approx(0.88, abs=0.1)


def test_pre_roll_and_end_pointing_shape_the_utterance():
    pipeline, *_ = make_pipeline(["x y z"], ["Fine, thank you."])
    results = run(pipeline, request(speech=1.2))
    audio = results[0].utterance
    seconds = len(audio) / 16000
    # 1.2 s of speech + 0.3 s pre-roll + a short tail, not the whole trailing silence.
    assert 1.45 <= seconds <= 1.9
    loud = np.abs(audio.astype(np.int32)) > 5000
    first_loud = np.argmax(loud) / 16000
    assert first_loud == pytest.approx(0.3, abs=0.1)  # the pre-roll precedes the speech


def test_no_wake_word_means_no_turn():
    pipeline, rec, sink, *_ = make_pipeline([], [])
    assert run(pipeline, quiet(3.0)) == []
    assert rec.of("wake") == [] and sink.blocks == []


def test_two_requests_in_one_recording_get_two_replies():
    pipeline, rec, sink, tts, _ = make_pipeline(
        ["turn on the light", "what time is it"],
        ["I cannot do that yet.", "I do not have a clock yet."],
    )
    results = run(pipeline, np.concatenate([request(), request()]))
    assert [r.turn for r in results] == [1, 2]
    assert [r.transcript for r in results] == ["turn on the light", "what time is it"]
    assert [e.turn for e in rec.of("reply")] == [1, 2]
    assert tts.spoken == ["I cannot do that yet.", "I do not have a clock yet."]


def test_first_sentence_is_spoken_while_the_model_still_writes():
    reply = "First comes this sentence. " + " ".join(["then more words"] * 8) + "."
    pipeline, rec, *_ = make_pipeline(["tell me a story"], [reply], token_delay=0.03)
    run(pipeline, request())
    first_audio = rec.of("tts_first_audio")[0].wall_time
    last_sentence = rec.of("reply_sentence")[-1].wall_time
    # ~25 tokens × 30 ms: the first audio must come well before the model finished.
    assert first_audio < last_sentence - 0.3


def test_stt_failure_is_reported_apologised_for_and_the_next_turn_works():
    pipeline, rec, sink, tts, _ = make_pipeline(
        [SpeechToTextError("whisper exploded"), "second try"], ["This one works."]
    )
    results = run(pipeline, np.concatenate([request(), request()]))
    assert [r.outcome for r in results] == ["error", "replied"]
    error = rec.of("error")[0]
    assert (error.stage, error.code, error.turn) == ("stt", "stt_failed", 1)
    assert "whisper exploded" in error.message
    assert tts.spoken == [APOLOGY, "This one works."]
    assert [e.outcome for e in rec.of("turn_end")] == ["error", "replied"]


def test_llm_failure_mid_reply_keeps_what_was_said_and_recovers():
    class Boom(LanguageModelError):
        pass

    pipeline, rec, sink, tts, llm = make_pipeline(["first", "second"], ["Fine.", "All good now."])
    original = llm.stream

    def failing_once(messages, cancel):
        if len(llm.prompts) == 0:
            llm.prompts.append(messages)
            yield "The start of an answer. And then"
            raise Boom("model ran out of memory")
        yield from original(messages, cancel)

    llm.stream = failing_once  # a fake's own attribute, not a patch of our code
    results = run(pipeline, np.concatenate([request(), request()]))
    assert [r.outcome for r in results] == ["error", "replied"]
    assert rec.of("error")[0].stage == "llm"
    assert tts.spoken[0] == "The start of an answer."
    assert APOLOGY in tts.spoken
    assert results[1].reply == "Fine."


def test_tts_failure_is_an_error_event_and_does_not_end_the_session():
    pipeline, rec, sink, tts, _ = make_pipeline(["one", "two"], ["Say KABOOM now.", "Okay then."])
    tts.fail_on = {"KABOOM"}
    results = run(pipeline, np.concatenate([request(), request()]))
    assert [r.outcome for r in results] == ["error", "replied"]
    assert rec.of("error")[0].stage == "tts"


def test_wake_without_a_request_times_out_as_no_speech():
    pipeline, rec, *_ = make_pipeline([], [])
    samples = np.concatenate([quiet(0.48), request()[7680 : 7680 + 1280], quiet(3.0)])
    results = run(pipeline, samples)
    assert [r.outcome for r in results] == ["no_speech"]
    assert rec.of("turn_end")[0].outcome == "no_speech"
    assert rec.of("transcript") == []


def test_empty_transcript_gets_no_reply():
    pipeline, rec, sink, *_ = make_pipeline([""], [])
    results = run(pipeline, request())
    assert results[0].outcome == "empty_transcript"
    assert sink.blocks == []


def test_wake_phrase_caught_by_the_pre_roll_is_stripped():
    pipeline, *_ = make_pipeline(["Jarvis, what is two plus two?"], ["Four."])
    assert run(pipeline, request())[0].transcript == "what is two plus two?"
    pipeline, *_ = make_pipeline(["Hey Jarvis what time is it"], ["Noon."])
    assert run(pipeline, request())[0].transcript == "what time is it"


class _ScoringStt(ScriptedStt):
    """Scripted, and scores sentences only for the transcript it wrote last, as whisper's
    engine does (the audio it holds is that transcript's)."""

    def __init__(self, transcripts: list[str], again: str) -> None:
        super().__init__(transcripts)
        self.last, self.again = "", again
        self.scored: list[tuple[str, list[str]]] = []

    def transcribe(self, audio, prompt=""):
        self.last = super().transcribe(audio, prompt)
        return self.last

    def score(self, heard, texts):
        self.scored.append((heard, list(texts)))
        return [-1.0] * len(texts) if heard == self.last else None

    def relisten(self, heard, prompt):
        if heard != self.last:
            return None
        self.last = self.again
        return self.again


class _AsksTheAudio:
    """A handler that scores a sentence and listens again, as the intent handler does."""

    name = "asks"

    def __init__(self, pipeline) -> None:
        self.score, self.relisten = pipeline.phrase_scorer(), pipeline.relistener()
        self.seen: list[object] = []

    async def handle(self, text, turn):
        first = await asyncio.to_thread(self.score, text, ["turn on the porch light"])
        again = await asyncio.to_thread(self.relisten, text, "The porch light.")
        then = await asyncio.to_thread(self.score, again, ["turn on the porch light"])
        self.seen += [text, first, again, then]
        return Handled("OK.", self.name)


def test_a_transcript_the_wake_phrase_was_taken_from_is_weighed_as_whisper_wrote_it():
    """ "Hey Jarvis, turn on the porsh light." reached the handlers without the wake
    phrase, and whisper's scoring and second listen, keyed by its own transcript,
    refused it: no transcript with the wake phrase in it was ever weighed."""
    stt = _ScoringStt(["Hey Jarvis, turn on the porsh light."],
                      again="Hey Jarvis, turn on the porch light, Jarvis.")  # fmt: skip
    pipeline, *_ = make_pipeline([], [], stt=stt)
    asks = _AsksTheAudio(pipeline)
    pipeline.handlers.append(asks)
    assert run(pipeline, request())[0].reply == "OK."
    assert asks.seen == ["turn on the porsh light.", [-1.0], "turn on the porch light", [-1.0]]
    assert stt.scored == [
        ("Hey Jarvis, turn on the porsh light.", ["Hey Jarvis, turn on the porch light"]),
        ("Hey Jarvis, turn on the porch light, Jarvis.",
         ["Hey Jarvis, turn on the porch light, Jarvis."]),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("heard", "kept"),
    [("Turn on the porch light, Jarvis.", "Turn on the porch light"),
     ("What time is it, thanks Jarvis?", "What time is it"),
     ("Who was Jarvis?", "Who was Jarvis?")],
)  # fmt: skip
def test_the_name_said_after_a_request_is_not_part_of_it(heard, kept):
    pipeline, *_ = make_pipeline([heard], ["Done."])
    assert run(pipeline, request())[0].transcript == kept


def test_a_recording_that_stops_mid_request_is_still_answered():
    pipeline, *_ = make_pipeline(["cut off"], ["I heard you."])
    samples = request(trail=0.0)
    results = run(pipeline, samples)
    assert results[0].outcome == "replied"


def test_ask_skips_wake_and_stt():
    pipeline, rec, sink, tts, _ = make_pipeline([], ["Paris."])

    async def main():
        async with pipeline:
            return await pipeline.ask("capital of France?")

    result = asyncio.run(main())
    assert result.reply == "Paris." and tts.spoken == ["Paris."]
    assert rec.of("wake") == []


def run_live(pipeline, samples):
    """Real-time input and a virtual speaker that takes as long as a real one."""
    return run(pipeline, samples, realtime=True)


def with_clock_sink(made):
    pipeline, rec, _, tts, llm = made
    sink = ClockSink()
    pipeline.sink = sink
    return pipeline, rec, sink, tts, llm


LONG_REPLY = "This answer goes on. " + " ".join(["and on"] * 30) + "."


def test_the_wake_word_over_a_reply_stops_it_and_the_new_request_is_answered():
    pipeline, rec, sink, tts, llm = with_clock_sink(
        make_pipeline(
            ["tell me a story", "what time is it"], [LONG_REPLY, "Noon."], token_delay=0.05
        )
    )
    # The reply is ~6 s of audio; the second wake word comes ~1.5 s into it.
    samples = np.concatenate([request(trail=2.5), request(lead=0.0, trail=2.0), quiet(3)])
    results = run_live(_with(pipeline, follow_up_seconds=0.0), samples)
    assert [r.outcome for r in results] == ["interrupted", "replied"]
    (event,) = rec.of("interrupted")
    assert event.by == "wake" and event.turn == 1 and event.reaction_seconds < 0.1
    assert [e.turn for e in rec.of("wake")] == [1, 2]
    assert results[1].transcript == "what time is it"
    # Far less than the whole first reply was played; the conversation keeps only that.
    assert sink.played_seconds() < 0.1 * len(LONG_REPLY.split()) - 2
    first = pipeline.conversation.exchanges[0]
    assert first.assistant == event.heard and LONG_REPLY.startswith(first.assistant[:20])
    assert len(first.assistant) < len(LONG_REPLY) - 40
    # The LLM was told to stop: the cut reply's generation did not run to the end.
    assert results[0].reply != LONG_REPLY


class RoomCanceller:
    """An echo canceller that removes `removes_db` of everything the microphone hears but
    the wake marker: its own voice saying the wake word, as a canceller leaves it (0 dB: a
    voice in the room, which a canceller cannot predict and keeps)."""

    active = True

    def __init__(self, removes_db: float) -> None:
        self.gain = 10 ** (-removes_db / 20)
        self.resets = 0

    def process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        out = (mic.astype(np.float64) * self.gain).astype(np.int16)
        for i in np.flatnonzero(mic[: len(mic) - len(WAKE_MARKER) + 1] == WAKE_MARKER[0]):
            if np.array_equal(mic[i : i + len(WAKE_MARKER)], WAKE_MARKER):
                out[i : i + len(WAKE_MARKER)] = WAKE_MARKER
        return out

    def reset(self) -> None:
        self.resets += 1


@pytest.mark.parametrize(("removes_db", "outcomes"), [
    (20.0, ["replied"]),  # its own voice: the double-talk gate is closed
    (0.0, ["interrupted", "replied"]),  # someone else: the gate is open
])  # fmt: skip
def test_the_wake_word_in_its_own_echo_does_not_interrupt_it(removes_db, outcomes):
    pipeline, rec, sink, tts, llm = with_clock_sink(
        make_pipeline(["tell me a story", "what time is it"], [LONG_REPLY, "Noon."])
    )
    canceller = RoomCanceller(removes_db)
    pipeline.echo = canceller
    # While it replies, the microphone hears something loud with the wake word in it.
    heard = mark_wake(loud(1.2), int(0.48 * 16000))
    samples = np.concatenate([request(trail=0.6), heard, quiet(7.0)])
    results = run_live(_with(pipeline, follow_up_seconds=0.0), samples)
    assert [r.outcome for r in results] == outcomes
    assert [e.by for e in rec.of("interrupted")] == (["wake"] if removes_db == 0 else [])
    # The canceller keeps what it learnt between turns: reset once, for the new source.
    assert canceller.resets == 1


NAMED_REPLY = "I am Jarvis, your assistant. " + LONG_REPLY


@pytest.mark.parametrize(("after", "interrupted"), [
    (0.24, False),  # while it says "I am Jarvis": its own name, not the user
    (2.4, True),  # seconds after its name: the user
])  # fmt: skip
def test_the_wake_word_right_after_it_said_its_own_name_is_not_a_barge_in(after, interrupted):
    pipeline, rec, sink, tts, llm = with_clock_sink(
        make_pipeline(["tell me a story", "what time is it"], [NAMED_REPLY, "Noon."])
    )
    samples = np.concatenate([request(trail=0.6), quiet(after), wake_chunk(), quiet(8.0)])
    results = run_live(_with(pipeline, follow_up_seconds=0.0), samples)
    assert [e.by for e in rec.of("interrupted")] == (["wake"] if interrupted else [])
    assert results[0].outcome == ("interrupted" if interrupted else "replied")


def test_stop_said_over_a_reply_silences_it_within_a_block():
    pipeline, rec, sink, tts, llm = with_clock_sink(
        make_pipeline(["tell me a story", "stop"], [LONG_REPLY])
    )
    samples = np.concatenate([request(trail=2.0), loud(0.5), quiet(4)])
    results = run_live(_with(pipeline, follow_up_seconds=5.0), samples)
    assert [r.outcome for r in results] == ["interrupted"]
    (event,) = rec.of("interrupted")
    assert event.by == "stop" and event.reaction_seconds < 0.05
    assert rec.of("follow_up") == []  # "stop" means stop, not "listen on"
    # Nothing was played after the interruption (20 ms blocks on the virtual speaker).
    stopped = event.wall_time
    assert sink.played_seconds() < 4.0
    assert all(start <= stopped + 0.03 for start, _ in list(sink.log._blocks))


def test_stop_with_nothing_playing_is_not_sent_to_the_llm():
    pipeline, rec, sink, tts, llm = make_pipeline(["Stop."], [])
    results = run(pipeline, request())
    assert [r.outcome for r in results] == ["stopped"]
    assert llm.prompts == [] and sink.blocks == [] and rec.of("interrupted") == []


def test_an_interrupt_with_nothing_playing_is_harmless():
    pipeline, *_ = make_pipeline([], [])
    assert pipeline.interrupt("stop") is False


def _tokens_during_synthesis(runs_on_cpu: bool) -> tuple[list[int], list[str]]:
    """Per sentence synthesised while the model was still writing: how many tokens it
    handed out meanwhile; and what was spoken."""
    reply = "First comes this sentence. " + " ".join(["then more words"] * 12) + "."
    tts = ToneTts(delay=0.12)
    pipeline, rec, sink, tts, llm = make_pipeline(["story"], [reply], token_delay=0.01, tts=tts)
    llm.runs_on_cpu = runs_on_cpu
    run(pipeline, request())
    last_token = llm.written_at[-1]
    during = [
        sum(start < t < end for t in llm.written_at)
        for start, end in tts.busy
        if start < last_token
    ]
    return during, tts.spoken


def test_a_model_on_the_cpu_waits_between_tokens_while_a_sentence_is_synthesised():
    during, spoken = _tokens_during_synthesis(True)
    # At most the token already under way when the synthesis began.
    assert during and all(n <= 1 for n in during), during
    assert spoken[0] == "First comes this sentence." and spoken[-1].endswith("words.")


def test_a_model_on_the_npu_keeps_writing_while_a_sentence_is_synthesised():
    during, spoken = _tokens_during_synthesis(False)
    assert during and max(during) >= 5, during
    assert spoken[-1].endswith("words.")


def _with(pipeline, earcons=None, **talk):
    """Change the conversation settings (follow-up, history, barge-in) of a pipeline."""
    settings = pipeline.settings
    conversation = dataclasses.replace(settings.conversation, **talk)
    settings = dataclasses.replace(settings, conversation=conversation)
    if earcons is not None:
        settings = dataclasses.replace(settings, earcons=earcons)
    pipeline.settings = settings
    pipeline.conversation.max_tokens = conversation.history_tokens
    return pipeline


def test_a_follow_up_needs_no_wake_word_and_gets_the_conversation():
    pipeline, rec, sink, tts, llm = make_pipeline(
        ["What is the capital of France?", "And of Germany?"],
        ["Paris is the capital of France.", "Berlin is the capital of Germany."],
    )
    samples = np.concatenate([request(), quiet(0.4), loud(0.8), quiet(1.6)])
    results = run(_with(pipeline, follow_up="always", follow_up_seconds=3.0), samples)
    assert [r.outcome for r in results] == ["replied", "replied"]
    assert len(rec.of("wake")) == 1 and rec.of("follow_up")[0].seconds == 3.0
    assert [e.turn for e in rec.of("speech_start")] == [1, 2]
    second_prompt = [(m.role, m.content) for m in llm.prompts[1]]
    assert second_prompt == [
        ("system", "be brief"),
        ("user", "What is the capital of France?"),
        ("assistant", "Paris is the capital of France."),
        ("user", "And of Germany?"),
    ]
    assert "follow_up" in [e.state for e in rec.of("state")]


def test_without_a_window_speech_after_a_reply_is_ignored():
    pipeline, rec, *_ = make_pipeline(["hello"], ["Hello there."])
    samples = np.concatenate([request(), quiet(0.4), loud(0.8), quiet(1.6)])
    results = run(_with(pipeline, follow_up_seconds=0.0), samples)
    assert [r.outcome for r in results] == ["replied"] and rec.of("follow_up") == []


def test_a_reply_that_asks_a_question_always_opens_the_window():
    pipeline, rec, *_ = make_pipeline(["set a timer", "ten minutes"],
                                      ["For how long?", "Done."])  # fmt: skip
    samples = np.concatenate([request(), quiet(0.4), loud(0.8), quiet(1.6)])
    results = run(_with(pipeline, follow_up_seconds=0.0, question_follow_up_seconds=4.0),
                  samples)  # fmt: skip
    assert [r.transcript for r in results] == ["set a timer", "ten minutes"]
    assert rec.of("follow_up")[0].seconds == 4.0


def test_an_unused_follow_up_window_closes_quietly():
    pipeline, rec, *_ = make_pipeline(["hello"], ["Hello there."])
    results = run(
        _with(pipeline, follow_up="always", follow_up_seconds=1.0),
        np.concatenate([request(), quiet(3)]),
    )
    assert [r.outcome for r in results] == ["replied"]
    states = [e.state for e in rec.of("state")]
    assert states[-2:] == ["follow_up", "idle"]
    assert [e.outcome for e in rec.of("turn_end")] == ["replied"]


def test_no_history_when_it_is_turned_off():
    pipeline, rec, sink, tts, llm = make_pipeline(["one", "two"], ["First.", "Second."])
    samples = np.concatenate([request(), quiet(0.4), loud(0.8), quiet(1.6)])
    run(_with(pipeline, follow_up="always", follow_up_seconds=3.0, history_tokens=0), samples)
    assert [m.role for m in llm.prompts[1]] == ["system", "user"]


def test_earcons_on_wake_end_of_listening_and_error_only_when_asked():
    pipeline, rec, sink, tts, llm = make_pipeline(
        ["first", SpeechToTextError("boom")], ["Fine then."]
    )
    run(_with(pipeline, earcons=True, follow_up_seconds=0.0),
        np.concatenate([request(), request()]))  # fmt: skip
    tones = [len(b) / r for b, r in sink.blocks]
    # wake + done, the reply; wake + done, the error cue, the apology
    assert tones[0] == pytest.approx(0.16, abs=0.01) and tones[1] == pytest.approx(0.08, abs=0.01)
    assert any(t == pytest.approx(0.28, abs=0.01) for t in tones)  # the error cue
    quiet_pipeline, _, quiet_sink, *_ = make_pipeline(["first"], ["Fine then."])
    run(quiet_pipeline, request())
    assert len(quiet_sink.blocks) == 1  # only the reply


def test_the_models_long_first_sentence_is_spoken_from_its_first_clause():
    reply = "The moon is about 384,400 kilometres from Earth, and it takes 27 days. It glows."
    pipeline, rec, sink, tts, _ = make_pipeline(["how far is the moon"], [reply])
    results = run(pipeline, request())
    assert tts.spoken == [
        "The moon is about 384,400 kilometres from Earth,",
        "and it takes 27 days.",
        "It glows.",
    ]
    assert results[0].reply == reply  # the words are the model's, only cut sooner


def test_a_handlers_answer_is_spoken_in_whole_sentences():
    class Asks:
        async def handle(self, text: str, turn: int) -> Handled | None:
            return Handled("OK, pasta timer for ten minutes, starting now.", "test")

    pipeline, rec, sink, tts, llm = make_pipeline(["set a pasta timer"], [])
    pipeline.handlers.append(Asks())
    run(pipeline, request())
    assert tts.spoken == ["OK, pasta timer for ten minutes, starting now."]


def test_a_wake_phrase_changed_on_the_page_is_taken_off_the_next_transcripts():
    pipeline, *_ = make_pipeline([], [])
    assert pipeline._strip_wake_phrase("Hey Jarvis, what time is it?") == "what time is it?"
    pipeline.settings = dataclasses.replace(pipeline.settings, wake_phrase="hey mycroft")
    heard = "Hey Mycroft, what time is it, thanks Mycroft?"
    assert pipeline._strip_wake_phrase(heard) == "what time is it"
