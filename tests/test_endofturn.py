"""Turn-taking with fake engines: the end-of-turn judge at pauses, the words check, the
speculative transcript and the fallback to a fixed silence (`appliance.pipeline.endofturn`)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from appliance.audio.sources import ArraySource
from appliance.audio.turn import ScriptedTurnDetector, unfinished_ending
from appliance.audio.vad import EndpointSettings
from appliance.handlers import Handled
from appliance.stt.fake import ScriptedStt
from appliance.tts.fake import ToneTts
from tests.fakes import loud, make_pipeline, quiet, wake_chunk

SETTINGS = EndpointSettings(
    silence_seconds=0.5, no_speech_timeout=2.0, pause_seconds=0.16, max_pause_seconds=1.2
)


def paused_request(pause: float = 0.64) -> np.ndarray:
    """The wake word, a 'spoken' half (a tone), a pause, the other half, then silence."""
    return np.concatenate(
        [quiet(0.48), wake_chunk(), quiet(0.32), loud(0.8), quiet(pause), loud(0.8), quiet(2.0)]
    )


def run(pipeline, samples):
    async def main():
        async with pipeline:
            return await pipeline.run(ArraySource(samples))

    return asyncio.run(main())


def test_a_pause_judged_finished_ends_the_turn_with_the_transcript_it_made():
    judge = ScriptedTurnDetector([True])
    pipeline, rec, _, _, llm = make_pipeline(
        ["what time is it"], ["It is late."], turn=judge, endpoint=SETTINGS
    )
    results = run(pipeline, paused_request(pause=2.0)[: -int(2.0 * 16000)])
    assert [r.transcript for r in results] == ["what time is it"]
    assert len(pipeline.engines.stt.heard) == 1  # transcribed once, at the pause
    ended = rec.of("speech_end")[0]
    judged = rec.of("end_of_turn")
    assert [(e.decision, e.silence_seconds) for e in judged] == [("end", 0.16)]
    assert ended.stream_time == judged[0].stream_time  # not the 0.5 s fixed silence later
    assert pipeline.turn_taking.stats.used == 1
    assert results[0].timings["stt_saved"] >= 0


def test_speech_after_an_unfinished_pause_is_one_request_and_nothing_acts_before():
    judge = ScriptedTurnDetector([False, False, True])  # asked at 0.16 and 0.32 s: not yet
    pipeline, rec, sink, _, llm = make_pipeline(
        ["set a timer", "set a timer for ten minutes"], ["Done."], turn=judge, endpoint=SETTINGS
    )
    results = run(pipeline, paused_request(pause=0.56))
    assert [r.transcript for r in results] == ["set a timer for ten minutes"]
    # The model saw only the whole request; the pause's words were never answered.
    assert [[m.content for m in p if m.role == "user"] for p in llm.prompts] == [
        ["set a timer for ten minutes"]
    ]
    decisions = [e.decision for e in rec.of("end_of_turn")]
    assert decisions[0] == "wait" and decisions[-1] == "end"
    assert len(rec.of("speech_end")) == 1 and len(rec.of("reply")) == 1
    assert pipeline.turn_taking.stats.discarded >= 1


def test_words_that_leave_the_sentence_open_keep_it_going_whatever_the_model_says():
    judge = ScriptedTurnDetector([True])
    pipeline, rec, _, _, llm = make_pipeline(
        ["Turn on the", "Turn on the light."], ["OK."], turn=judge, endpoint=SETTINGS
    )
    results = run(pipeline, paused_request(pause=0.64))
    assert [r.transcript for r in results] == ["Turn on the light."]
    first = rec.of("end_of_turn")[0]
    assert (first.decision, first.unfinished) == ("wait", "ends on 'the'")
    assert first.probability == 1.0


def test_a_judge_that_never_says_finished_is_overruled_by_the_longest_pause():
    judge = ScriptedTurnDetector([False])
    pipeline, rec, *_ = make_pipeline(["hello there"], ["Hi."], turn=judge, endpoint=SETTINGS)
    results = run(pipeline, paused_request(pause=2.0)[: -int(2.0 * 16000)])
    assert [r.outcome for r in results] == ["replied"]
    assert all(e.decision == "wait" for e in rec.of("end_of_turn"))
    silences = [e.silence_seconds for e in rec.of("end_of_turn")]
    assert silences[-3:] == [0.16, 0.32, 0.64]  # asked again each time the pause doubled


def test_a_failing_model_falls_back_to_the_fixed_silence_and_says_so_once():
    judge = ScriptedTurnDetector(raises=True)
    pipeline, rec, *_ = make_pipeline(
        ["one", "two"], ["First.", "Second."], turn=judge, endpoint=SETTINGS
    )
    two_requests = np.concatenate([paused_request(2.0), paused_request(2.0)])
    results = run(pipeline, two_requests)
    assert [r.outcome for r in results] == ["replied", "replied"]
    fallbacks = rec.of("end_of_turn_fallback")
    assert len(fallbacks) == 1 and "failed" in fallbacks[0].message
    assert len(judge.calls) == 1  # not asked again after failing
    assert rec.of("end_of_turn") == []


def test_a_missing_model_is_reported_at_start_and_requests_still_end():
    pipeline, rec, *_ = make_pipeline(["hello"], ["Hi."], endpoint=SETTINGS)
    pipeline.turn_taking._unavailable = "model file turn/x.onnx is missing"
    results = run(pipeline, paused_request(2.0))
    assert [r.outcome for r in results] == ["replied"]
    assert [e.message for e in rec.of("end_of_turn_fallback")] == [
        "model file turn/x.onnx is missing"
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Set a timer for", "ends on 'for'"),
        ("What is the capital of?", "ends on 'of'"),
        ("Turn on the kitchen light and", "ends on 'and'"),
        ("Set the porch light to", "ends on 'to'"),
        ("Set a timer for...", "trails off"),
        ("I want to, um", "ends on 'um'"),
        ("", "nothing said yet"),
        ("Turn the light on.", ""),
        ("What time is it?", ""),
        ("Set the porch light to 40%.", ""),
        ("Where are you from?", ""),
        ("Turn on the porch light please", ""),
    ],
)
def test_words_that_leave_an_english_sentence_open(text, why):
    assert unfinished_ending(text) == why


def test_other_languages_are_judged_by_trailing_marks_only():
    assert unfinished_ending("Schalte das Licht im", "de") == ""
    assert unfinished_ending("Schalte das Licht…", "de") == "trails off"


def test_speech_without_a_pause_is_still_cut_at_the_longest_request():
    judge = ScriptedTurnDetector([False])
    capped = EndpointSettings(
        no_speech_timeout=2.0, pause_seconds=0.16, max_pause_seconds=1.2, max_speech_seconds=2.0
    )
    pipeline, rec, *_ = make_pipeline(["on and on"], ["Yes."], turn=judge, endpoint=capped)
    samples = np.concatenate([quiet(0.48), wake_chunk(), quiet(0.32), loud(4.0), quiet(1.0)])
    results = run(pipeline, samples)
    assert [r.outcome for r in results] == ["replied"]
    assert [e.timed_out for e in rec.of("speech_end")] == [True]
    assert judge.calls == []  # never a pause to ask about


def test_silence_after_the_wake_word_times_out_without_asking_the_model():
    judge = ScriptedTurnDetector([True])
    pipeline, rec, *_ = make_pipeline([], [], turn=judge, endpoint=SETTINGS)
    samples = np.concatenate([quiet(0.48), wake_chunk(), quiet(3.0)])
    results = run(pipeline, samples)
    assert [r.outcome for r in results] == ["no_speech"]
    assert judge.calls == [] and rec.of("end_of_turn") == []


def test_an_unsure_model_needs_less_proof_as_the_pause_grows():
    judge = ScriptedTurnDetector([0.4])  # below 0.5, above the second ask's 0.25
    pipeline, rec, *_ = make_pipeline(["cancel the timer"], ["OK."], turn=judge, endpoint=SETTINGS)
    results = run(pipeline, paused_request(pause=2.0)[: -int(2.0 * 16000)])
    assert [r.outcome for r in results] == ["replied"]
    judged = [(e.silence_seconds, e.decision) for e in rec.of("end_of_turn")]
    assert judged == [(0.16, "wait"), (0.32, "end")]


def run_live(pipeline, samples, handlers=()):
    """At a microphone's pace: the audio goes on while a turn is being answered."""

    async def main():
        async with pipeline:
            pipeline.handlers.extend(handlers)
            return await pipeline.run(ArraySource(samples, realtime=True))

    return asyncio.run(main())


class _Handler:
    """A request handler that takes every request with one answer, and counts."""

    def __init__(self, reply: str, *, acted: bool) -> None:
        self.reply, self.acted = reply, acted
        self.taken: list[str] = []
        self.forgotten = 0

    async def handle(self, text: str, turn: int) -> Handled | None:
        self.taken.append(text)
        return Handled(self.reply, "test", "switch", acted=self.acted)

    def forget_pending(self) -> None:
        self.forgotten += 1


def test_a_turn_ended_too_early_is_withdrawn_when_the_speaker_goes_on():
    judge = ScriptedTurnDetector([True])  # "finished" at the first short pause: wrong
    pipeline, rec, sink, _, llm = make_pipeline(
        ["what is the capital", "what is the capital of germany"],
        ["Half an answer.", "Berlin."],
        token_delay=0.6,  # no word of the first answer is ready when speech resumes
        turn=judge,
        endpoint=SETTINGS,
    )
    results = run_live(pipeline, paused_request(pause=0.64))
    assert [(r.transcript, r.outcome, r.reply) for r in results] == [
        ("what is the capital of germany", "replied", "Berlin.")
    ]
    outcomes = [e.outcome for e in rec.of("turn_end")]
    assert outcomes == ["resumed", "replied"]
    assert [e.text for e in rec.of("reply")] == ["Berlin."]  # nothing else was said
    assert len(sink.blocks) == 1  # one sentence's audio: Berlin.
    assert len({e.turn for e in rec.of("turn_end")}) == 1  # one request, one turn number


def test_a_turn_that_acted_is_not_withdrawn_when_speech_follows():
    judge = ScriptedTurnDetector([True])
    handler = _Handler("The porch light is on.", acted=True)
    pipeline, rec, sink, _, llm = make_pipeline(
        ["turn on the porch light"], [], turn=judge, endpoint=SETTINGS
    )
    results = run_live(pipeline, paused_request(pause=0.64), [handler])
    assert handler.taken == ["turn on the porch light"]  # acted once, not again
    assert [(r.outcome, r.reply) for r in results] == [("replied", "The porch light is on.")]
    assert "resumed" not in [e.outcome for e in rec.of("turn_end")]


def test_a_question_asked_back_is_withdrawn_and_forgotten_when_the_speaker_goes_on():
    judge = ScriptedTurnDetector([True])
    handler = _Handler("Did you mean the porch light?", acted=False)
    slow_voice = ToneTts(delay=0.8)  # the question is not yet spoken when speech resumes
    pipeline, rec, sink, _, llm = make_pipeline(
        ["turn off the porch", "turn off the porch light and the fan"],
        [],
        tts=slow_voice,
        turn=judge,
        endpoint=SETTINGS,
    )
    results = run_live(pipeline, paused_request(pause=0.64), [handler])
    assert handler.taken == ["turn off the porch", "turn off the porch light and the fan"]
    assert handler.forgotten >= 1
    assert [r.transcript for r in results] == ["turn off the porch light and the fan"]
    assert [e.outcome for e in rec.of("turn_end")] == ["resumed", "replied"]


class _Preparing(_Handler):
    """Also prepares (`handlers.Prepares`): records what it was given at the pauses."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply, acted=True)
        self.prepared: list[str] = []

    async def prepare(self, text: str) -> None:
        self.prepared.append(text)


def test_handlers_prepare_the_words_heard_at_a_pause_and_act_only_on_the_whole_request():
    judge = ScriptedTurnDetector([False, False, True])
    handler = _Preparing("The timer is set.")
    pipeline, rec, sink, _, llm = make_pipeline(
        ["hey jarvis, set a timer", "hey jarvis, set a timer for ten minutes"], [],
        turn=judge, endpoint=SETTINGS,
    )  # fmt: skip
    results = run_live(pipeline, paused_request(pause=0.56), [handler])
    # Each speculative transcript was prepared, as the handlers will be given it…
    assert handler.prepared == ["set a timer", "set a timer for ten minutes"]
    # …and only the whole request was acted on, once.
    assert handler.taken == ["set a timer for ten minutes"]
    assert [r.transcript for r in results] == ["set a timer for ten minutes"]
    assert [e.text for e in rec.of("reply")] == ["The timer is set."]


def test_a_handler_that_fails_to_prepare_still_answers():
    class Broken(_Preparing):
        async def prepare(self, text: str) -> None:
            raise RuntimeError("no")

    judge = ScriptedTurnDetector([True])
    handler = Broken("The porch light is on.")
    pipeline, rec, sink, _, llm = make_pipeline(
        ["turn on the porch light"], [], turn=judge, endpoint=SETTINGS
    )
    results = run_live(pipeline, paused_request(pause=2.0), [handler])
    assert [(r.outcome, r.reply) for r in results] == [("replied", "The porch light is on.")]


class _WeighingStt(ScriptedStt):
    """Scripted transcripts, and whisper's sentence scoring of the last one: the bed
    light's sentences are likely, the rest are not."""

    def __init__(self, transcripts: list[str]) -> None:
        super().__init__(transcripts)
        self.last = ""
        self.scored: list[list[str]] = []

    def transcribe(self, audio, prompt=""):
        self.last = super().transcribe(audio, prompt)
        return self.last

    def score(self, heard, texts):
        if heard != self.last:
            return None
        self.scored.append(list(texts))
        return [-2.0 if t == heard else -3.0 if "bed light" in t else -20.0 for t in texts]


def test_a_misheard_command_is_weighed_at_the_pause_and_the_turn_acts_on_that(
    tmp_path, monkeypatch
):
    """The understanding weighs the pause's transcript against its audio while the end of
    the request is judged; the request that ends on it acts on that weighing, without
    asking whisper again."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from appliance.house import actions_for
    from appliance.sections.devices import DeviceConfig, GpioOutput
    from tests.fakes import repeatable_config

    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path))
    devices = [
        DeviceConfig("porch light", "light", (), "outside", GpioOutput(17)),
        DeviceConfig("bed light", "light", (), "bedroom", GpioOutput(18, pwm=True)),
    ]
    config = repeatable_config(devices=devices)
    stt = _WeighingStt(["Hey Jarvis, set the meant light to 50 percent."])
    pipeline, rec, sink, _, llm = make_pipeline(
        [], [], stt=stt, turn=ScriptedTurnDetector([True]), endpoint=SETTINGS
    )
    pins = MockFactory(pin_class=MockPWMPin)

    async def main():
        async with pipeline, actions_for(config, pipeline, pin_factory=pins) as actions:
            results = await pipeline.run(ArraySource(paused_request(pause=2.0), realtime=True))
            return results, actions.recognizer.pause_weighings

    try:
        results, prepared = asyncio.run(main())
    finally:
        pins.reset()
    assert (prepared.kept, prepared.used) == (1, 1)  # weighed once, at the pause
    # …as whisper wrote it, the wake phrase in (`Pipeline._as_written`).
    assert stt.scored and all("Hey Jarvis" in t for texts in stt.scored for t in texts)
    (action,) = rec.of("action")
    assert action.tool == "device_brightness" and "bed light" in str(action.arguments)
    assert results[0].reply == action.result  # what ran, and only that
