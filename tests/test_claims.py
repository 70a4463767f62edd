"""No reply claims an action that did not run: the claim finder on its own, and the
pipeline replacing a claim in the language model's free text (fakes, and the real model)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from appliance.handlers import Handled
from appliance.understanding.claims import Claim, find_claim, truthful_reply
from tests.fakes import make_pipeline

# Written before the rules were tuned: the brief's sentences and the first ones thought of.
CLAIMS_FIRST = [
    ("I set the timer for 30 seconds.", "timer"),
    ("The bed light brightness is set to 50%.", "device"),
    ("I'll cancel.", "other"),
    ("I've turned on the kitchen light", "device"),
    ("Done! The lights are off now.", "device"),
    ("Your timer is running.", "timer"),
    ("Timer set.", "timer"),
    ("Added milk to your list.", "list"),
    ("The porch light is now on.", "device"),
    ("Okay, I have switched off the fan", "device"),
    ("I cancelled your timer", "timer"),
    ("I'm turning on the light", "device"),
    ("Starting a 10 minute timer", "timer"),
    ("Locked the door.", "device"),
    ("Sure, the alarm is set for 7", "timer"),
    ("I will remind you in ten minutes", "timer"),
    ("Sure! I've set a timer for five minutes.", "timer"),
    ("I am turning off the bedroom lamp now.", "device"),
    ("The kitchen lights have been switched off.", "device"),
    ("Alright, your alarm has been scheduled for 6 am.", "timer"),
    ("Okay, dimming the living room lights to 30 percent.", "device"),
    ("Your reminder is set for tomorrow at noon.", "timer"),
]
NOT_CLAIMS_FIRST = [
    "The capital of France is Paris.",
    "The sun sets in the west.",
    "You can set a timer by saying 'set a timer for ten minutes'.",
    "Do you want me to set a timer?",
    "I can't turn on lights.",
    "I don't have a timer.",
    "Photosynthesis turned light into energy.",
    "The store closed in 1990.",
    "Why did the scarecrow win an award? Because he was outstanding in his field.",
    "Because he was outstanding in his field.",
    "Light travels at about 300,000 kilometres per second.",
    "I'm sorry, I cannot lock doors.",
    "Timers are useful for cooking pasta.",
    "To turn on a light, say 'turn on' and the light's name.",
    "I am a small language model running on this device.",
    "A timer counts down and rings at the end.",
    "I'm not able to set alarms, but I can answer questions.",
    "Would you like me to turn off the fan?",
    "The Berlin Wall was opened in 1989.",
    "I like to think of myself as helpful.",
    "Hello! How can I help you today?",
    "The weather today is sunny with a light breeze.",
]
# Written after: other phrasings the rules should generalise to.
CLAIMS_LATER = [
    ("OK, the heater is off.", "device"),
    ("Got it, your shopping list now has eggs.", "list"),
    ("I just unlocked the front door for you.", "device"),
    ("We have paused the music.", "other"),
    ("I went ahead and opened the blinds.", "device"),
    ("Consider it done.", "other"),
    ("All set, your countdown is running.", "timer"),
    ("Turning the fan on now.", "device"),
    ("Removed eggs from the shopping list.", "list"),
    ("Alright, I'm going to set an alarm for 6 am.", "timer"),
    ("Your 5 minute timer has started.", "timer"),
    ("The lamp's on now.", "device"),
    ("Certainly, I've activated the heating.", "device"),
    ("It's done, the garage door is closed.", "device"),
    ("Let me switch that off for you.", "device"),
    ("I've stopped the timer.", "timer"),
    ("Reminder scheduled for 8 pm.", "timer"),
    ("Lights off.", "device"),
    ("Sure thing, I will turn the TV off.", "device"),
    ("The thermostat is now set to 21 degrees.", "device"),
    ("Got it! Your timer will go off in 30 seconds.", "timer"),
    ("I'll let you know when the time is up.", "other"),
    # What SmolLM2-135M said to "Set a timer for 30 seconds." under confirming prompts.
    ("Set a timer for 30 seconds.", "timer"),  # the request said back sounds like "done"
    ("I'm set the timer for 30 seconds.", "timer"),
    ("You turned on the light.", "device"),
]
NOT_CLAIMS_LATER = [
    "I didn't catch that, could you say it again?",
    "Setting a timer is easy: just ask me.",
    "Turning off lights you don't need saves energy.",
    "Once upon a time, a princess locked herself in a tower.",
    "The light bulb was invented by Thomas Edison.",
    "A light year is the distance light travels in a year.",
    "Would you like me to add it to your list?",
    "I can help you set timers and switch lights.",
    "If you want, you can turn the fan off by saying 'turn off the fan'.",
    "The alarm clock was invented in 1787.",
    "I'm happy to help with that.",
    "The doors open at 9 every morning.",  # ("Doors opened at 7 pm." reads as a claim)
    "The door was closed when we arrived.",
    "I started out as a research project.",
    "Shall I turn the light on?",
    "I am not able to control devices that are not set up.",
    "The movie is set in Paris.",
    "He started his career in 1990.",
    "I think the answer is 42.",
    "Which light do you mean?",
    "A list of the planets: Mercury, Venus, Earth and Mars.",
    "Sorry, I cannot cancel timers that do not exist.",
    "Set the oven to 180 degrees if you want it crispy.",
    "Turn the light on by saying 'turn on the light'.",
    "You can set a timer for 30 seconds.",
    "I'm ready to set a timer for you.",
    "I'll be happy to help with that!",
]
CLAIMS = CLAIMS_FIRST + CLAIMS_LATER
NOT_CLAIMS = NOT_CLAIMS_FIRST + NOT_CLAIMS_LATER


@pytest.mark.parametrize(("sentence", "kind"), CLAIMS)
def test_a_sentence_that_claims_an_action_is_found(sentence, kind):
    claim = find_claim(sentence)
    assert claim is not None, sentence
    assert claim.kind == kind and claim.words
    assert claim.words.lower() in sentence.lower().replace("’", "'")


@pytest.mark.parametrize("sentence", NOT_CLAIMS)
def test_a_sentence_that_claims_nothing_is_left_alone(sentence):
    assert find_claim(sentence) is None


@pytest.mark.parametrize("kind", ["timer", "device", "list", "other"])
def test_the_truthful_reply_claims_nothing_and_is_short(kind):
    reply = truthful_reply(Claim(kind, "x"))
    assert find_claim(reply) is None and reply.endswith((".", "'."))
    assert 0 < len(reply.split()) <= 30


def ask(pipeline, text):
    async def main():
        async with pipeline:
            return await pipeline.ask(text)

    return asyncio.run(main())


def test_a_false_claim_is_replaced_and_the_model_stopped(caplog):
    reply = (
        "Happy to help with that. I set the timer for 30 seconds. It will ring when the time is up."
    )
    pipeline, rec, sink, tts, llm = make_pipeline([], [reply], token_delay=0.01)
    written: list[str] = []
    stream = llm.stream

    def recorded(messages, cancel):
        for piece in stream(messages, cancel):
            written.append(piece)
            yield piece

    llm.stream = recorded  # a fake's own attribute, not a patch of our code
    with caplog.at_level(logging.WARNING, logger="appliance.pipeline"):
        result = ask(pipeline, "at set of time after 30 seconds")
    truthful = truthful_reply(Claim("timer", "I set"))
    assert tts.spoken == ["Happy to help with that.", truthful]
    assert [e.text for e in rec.of("reply_sentence")] == tts.spoken
    assert result.reply == f"Happy to help with that. {truthful}" == rec.of("reply")[0].text
    assert result.false_claims_replaced == 1 and result.outcome == "replied"
    assert "It will ring" not in result.reply
    assert pipeline.conversation.exchanges[-1].assistant == result.reply
    assert "I set the timer for 30 seconds." in caplog.text
    # The model was told to stop: it never wrote its last words.
    assert "".join(written).startswith(reply[:40]) and "up." not in "".join(written)


def test_a_claim_as_the_first_sentence_is_the_whole_reply():
    pipeline, rec, sink, tts, llm = make_pipeline([], ["The bed light brightness is set to 50%."])
    result = ask(pipeline, "set bed light brightness to 50 percent")
    assert tts.spoken == [truthful_reply(Claim("device", ""))] and result.false_claims_replaced == 1


def test_a_reply_without_a_claim_is_spoken_as_written():
    pipeline, rec, sink, tts, llm = make_pipeline([], ["The capital of France is Paris."])
    result = ask(pipeline, "capital of France")
    assert result.reply == "The capital of France is Paris." and result.false_claims_replaced == 0


def test_a_handlers_reply_is_a_tool_outcome_and_not_checked():
    class Timer:
        async def handle(self, text, turn):
            return Handled("I set a timer for ten minutes.", handler="fast_path", action="timer")

    pipeline, rec, sink, tts, llm = make_pipeline([], [])
    pipeline.handlers.append(Timer())
    result = ask(pipeline, "set a timer for ten minutes")
    assert result.reply == "I set a timer for ten minutes." and result.false_claims_replaced == 0


@pytest.fixture(scope="module")
def engines():
    from appliance.engines import load_engines
    from tests.fakes import repeatable_config

    return load_engines(repeatable_config(), need_listening=False)  # typed: no listening


@pytest.mark.e2e
@pytest.mark.parametrize("prompt", [
    # SmolLM2-135M says the request back: "Set a timer for 30 seconds."
    "You are a helpful assistant. Always confirm the user's task is done, e.g. 'I set the "
    "timer.'",
    # … and here "I'll set the timer for 30 seconds."
    "Always answer with 'I set the timer for' and the time.",
])  # fmt: skip
def test_the_real_model_told_to_confirm_tasks_is_not_believed(engines, prompt, caplog):
    from appliance import events as ev
    from appliance.audio.sinks import RecordingSink
    from appliance.engines import pipeline_settings
    from appliance.pipeline import Pipeline
    from tests.fakes import Recorder, repeatable_config

    settings = dataclasses.replace(pipeline_settings(repeatable_config()), system_prompt=prompt)
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    pipeline = Pipeline(engines, RecordingSink(), bus, settings)
    with caplog.at_level(logging.WARNING, logger="appliance.pipeline"):
        result = ask(pipeline, "Set a timer for 30 seconds.")
    # What the model wrote (the log keeps it): a claim, so the test means something.
    (record,) = [r for r in caplog.records if "did not run" in r.getMessage()]
    written = record.args[3]
    assert find_claim(written) is not None and result.false_claims_replaced == 1, written
    spoken = [e.text for e in recorder.of("reply_sentence")]
    assert all(find_claim(sentence) is None for sentence in spoken), spoken
    truthful = truthful_reply(Claim("timer", ""))
    assert spoken[-1] == truthful and result.reply.endswith(truthful)
    assert result.reply == " ".join(spoken) and written not in result.reply
