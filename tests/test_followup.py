"""Follow-up windows that do not answer the room: when the window opens
(conversation.follow_up), what is answered in it, and handlers' pending questions."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from appliance.audio.sources import ArraySource
from appliance.handlers import Handled
from appliance.understanding.followup import asks, plausible_answer
from tests.fakes import loud, make_pipeline, quiet, request

QUESTION = "The moon is slowly drifting away from the Earth. Want to hear another fact?"
LIGHTS = "Which light: porch or kitchen?"


def followed(*speech: float) -> np.ndarray:
    """A request with the wake word, then speech without it after each reply."""
    parts = [request()]
    for seconds in speech:
        parts += [quiet(0.4), loud(seconds), quiet(1.6)]
    return np.concatenate(parts)


def run(pipeline, samples, follow_up: str = "asked"):
    talk = dataclasses.replace(pipeline.settings.conversation, follow_up=follow_up)
    pipeline.settings = dataclasses.replace(pipeline.settings, conversation=talk)

    async def main():
        async with pipeline:
            return await pipeline.run(ArraySource(samples))

    return asyncio.run(main())


class Lights:
    """Asks "which light?" for "lights", and takes the answer while its question is
    pending; counts how often it was told to forget it."""

    def __init__(self, *, forget_async: bool = False) -> None:
        self.pending = False
        self.forgotten = 0
        self.seen: list[str] = []
        if forget_async:
            self.forget_pending = self._forget_async

    async def handle(self, text: str, turn: int) -> Handled | None:
        self.seen.append(text)
        if text == "lights":
            self.pending = True
            return Handled(LIGHTS, handler="fast_path", follow_up=True)
        if self.pending and "porch" in text:
            self.pending = False
            return Handled("The porch light is on.", handler="fast_path", action="device_on")
        return None

    def forget_pending(self) -> None:
        self.forgotten += 1
        self.pending = False

    async def _forget_async(self) -> None:
        await asyncio.sleep(0)
        Lights.forget_pending(self)


def test_no_window_after_a_reply_that_asks_nothing():
    pipeline, rec, sink, tts, llm = make_pipeline(
        ["What is the capital of France?", "yeah I know, she told me yesterday at work"],
        ["Paris is the capital of France."],
    )
    results = run(pipeline, followed(0.8))
    assert [r.outcome for r in results] == ["replied"]
    assert rec.of("follow_up") == [] and len(llm.prompts) == 1


def test_a_question_opens_the_window_and_yes_is_answered():
    pipeline, rec, sink, tts, llm = make_pipeline(
        ["tell me about the moon", "yes"], [QUESTION, "The moon has moonquakes."]
    )
    results = run(pipeline, followed(0.8))
    assert [(r.transcript, r.outcome) for r in results] == [
        ("tell me about the moon", "replied"), ("yes", "replied"),
    ]  # fmt: skip
    (window,) = rec.of("follow_up")
    assert window.seconds == pipeline.settings.conversation.question_follow_up_seconds
    assert [m.content for m in llm.prompts[1]][-2:] == [QUESTION, "yes"]


@pytest.mark.parametrize("talk", [
    "haha, this is the first place",
    "no way, that's what he said to Tom last week",
    "yeah I know, she told me yesterday at work",
])  # fmt: skip
def test_background_talk_after_a_question_is_ignored_silently(talk):
    pipeline, rec, sink, tts, llm = make_pipeline(["tell me about the moon", talk], [QUESTION])
    results = run(pipeline, followed(0.8, 0.8))
    assert [r.outcome for r in results] == ["replied", "ignored"]
    assert len(llm.prompts) == 1 and tts.spoken == [
        "The moon is slowly drifting away from the Earth.", "Want to hear another fact?",
    ]  # fmt: skip
    assert [e.outcome for e in rec.of("turn_end")] == ["replied", "ignored"]
    assert [e.turn for e in rec.of("reply")] == [1]
    # The window closed with it: the speech after it was not even transcribed.
    assert len(rec.of("transcript")) == 2 and len(rec.of("follow_up")) == 1
    assert [e.state for e in rec.of("state")][-1] == "idle"
    assert len(pipeline.conversation.exchanges) == 1


def test_with_follow_up_always_every_reply_opens_the_window_and_anything_is_answered():
    pipeline, rec, sink, tts, llm = make_pipeline(
        ["What is the capital of France?", "haha, this is the first place"],
        ["Paris is the capital of France.", "I am glad you like it."],
    )
    results = run(pipeline, followed(0.8), follow_up="always")
    assert [r.outcome for r in results] == ["replied", "replied"]
    assert rec.of("follow_up")[0].seconds == pipeline.settings.conversation.follow_up_seconds


def test_with_follow_up_never_not_even_a_question_opens_the_window():
    pipeline, rec, sink, tts, llm = make_pipeline(["tell me about the moon", "yes"], [QUESTION])
    results = run(pipeline, followed(0.8), follow_up="never")
    assert [r.outcome for r in results] == ["replied"] and rec.of("follow_up") == []


def test_a_handlers_question_is_answered_in_the_window_by_the_handler_first():
    # Long and no answer-shape: without the handler's pending question it would be ignored.
    answer = "porch light please and make it bright for the party tonight"
    pipeline, rec, sink, tts, llm = make_pipeline(["lights", answer], [])
    lights = Lights()
    pipeline.handlers.append(lights)
    results = run(pipeline, followed(0.8))
    assert [r.reply for r in results] == [LIGHTS, "The porch light is on."]
    assert llm.prompts == [] and lights.seen == ["lights", answer]
    assert lights.forgotten == 1  # at the wake word only: the answer kept the question


@pytest.mark.parametrize("forget_async", [False, True])
def test_the_wake_phrase_in_the_window_starts_a_new_request(forget_async):
    # Background-talk shaped, but said to the appliance: answered, and the pending
    # "which light?" is forgotten before the handlers see it.
    pipeline, rec, sink, tts, llm = make_pipeline(
        ["lights", "Hey Jarvis, this is the porch of the first place"], ["A nice porch."]
    )
    lights = Lights(forget_async=forget_async)
    pipeline.handlers.append(lights)
    results = run(pipeline, followed(0.8))
    assert [(r.transcript, r.outcome) for r in results] == [
        ("lights", "replied"), ("this is the porch of the first place", "replied"),
    ]  # fmt: skip
    assert lights.forgotten == 2 and results[1].reply == "A nice porch."
    assert len(rec.of("wake")) == 1


def test_typed_requests_keep_a_pending_question():
    pipeline, rec, sink, tts, llm = make_pipeline([], [])
    lights = Lights()
    pipeline.handlers.append(lights)

    async def main():
        async with pipeline:
            return [await pipeline.ask("lights"), await pipeline.ask("the porch one")]

    first, second = asyncio.run(main())
    assert second.reply == "The porch light is on." and lights.forgotten == 0


@pytest.mark.parametrize("prompt", ["", "porch light, kitchen light"])
def test_the_stt_prompt_is_given_to_speech_to_text_when_set(prompt):
    pipeline, rec, sink, tts, llm = make_pipeline(["hello"], ["Hi."])
    prompts: list[str | None] = []
    transcribe = pipeline.engines.stt.transcribe

    def recording(audio, prompt=None):
        prompts.append(prompt)
        return transcribe(audio)

    pipeline.engines.stt.transcribe = recording  # a fake's own attribute
    pipeline.stt_prompt = prompt
    run(pipeline, request())
    assert prompts == [prompt or None]


@pytest.mark.parametrize(("text", "asked", "answer"), [
    ("yes", "Paris is the capital of France.", True),
    ("Nope.", QUESTION, True),
    ("please do", QUESTION, True),
    ("Sure, go ahead.", QUESTION, True),
    ("And of Germany?", QUESTION, True),
    ("what about Mars", QUESTION, True),
    ("how far away is it", QUESTION, True),
    ("ten minutes", "For how long?", True),
    ("Yeah, the kitchen one.", "Which light: porch or kitchen.", True),
    ("Oh, the porch one", LIGHTS, True),
    ("And of Germany?", "Paris is the capital of France.", False),
    ("ten minutes", "Paris is the capital of France.", False),
    ("haha, this is the first place", QUESTION, False),
    ("this is the first place", "For how long?", False),
    ("no way, that's what he said to Tom last week", QUESTION, False),
    ("yeah I know, she told me yesterday at work", QUESTION, False),
    ("we went there last summer with the kids and it rained", QUESTION, False),
    ("she is so funny", QUESTION, False),
    ("[BLANK_AUDIO]", QUESTION, False),
    ("(laughing)", QUESTION, False),
])  # fmt: skip
def test_plausible_answers(text, asked, answer):
    assert plausible_answer(text, asked) is answer


def test_what_asks():
    assert asks("Want to hear another fact?") and asks("Which light: porch or kitchen.")
    assert not asks("When it rings, I will say so.") and not asks("Paris is lovely.")
