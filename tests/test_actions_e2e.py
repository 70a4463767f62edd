"""Spoken commands through the real engines (Piper/espeak-ng speech → openWakeWord →
Silero VAD → whisper.cpp) switch gpiozero MockFactory pins; a timer set by voice survives
a restart of the service and is announced by the real Piper voice."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance import events as ev
from appliance.actions.phrasing import check, facts_of
from appliance.audio.sinks import RecordingSink
from appliance.audio.sources import ArraySource
from appliance.config import AppConfig
from appliance.engines import load_engines, pipeline_settings
from appliance.house import Actions
from appliance.pipeline import Pipeline
from appliance.sections.devices import ActionsConfig, DeviceConfig, GpioOutput
from appliance.testing.speech import add_noise, compose, espeak_phrase, tts_phrase
from tests.fakes import Recorder, repeatable_config

pytestmark = pytest.mark.e2e
DEVICES = [
    DeviceConfig("porch light", "light", ("front light",), "outside", GpioOutput(17, pwm=True)),
    DeviceConfig("kitchen light", "light", (), "kitchen", GpioOutput(27)),
]


@pytest.fixture(scope="module")
def engines():
    return load_engines(repeatable_config())


@pytest.fixture
def pins():
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()


def spoken(engines, *parts):
    """ "Hey Jarvis." then each request; str = Piper, ("espeak", text) = espeak-ng."""
    pieces: list = [0.5]
    for part in parts:
        if isinstance(part, float):
            pieces.append(part)
            continue
        voice = espeak_phrase(part[1], speed=140) if isinstance(part, tuple) else None
        pieces += [tts_phrase(engines.tts, "Hey Jarvis."), 0.4,
                   voice if voice is not None else tts_phrase(engines.tts, part), 1.5]  # fmt: skip
    return add_noise(compose(*pieces))


def converse(engines, recording, data_dir, pins, *, follow_up=0.0, linger=0.0):
    settings = pipeline_settings(AppConfig())
    talk = dataclasses.replace(settings.conversation, follow_up_seconds=follow_up)
    settings = dataclasses.replace(settings, conversation=talk)
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    sink = RecordingSink()

    async def main():
        async with Pipeline(engines, sink, bus, settings) as pipeline:
            actions = Actions(DEVICES, ActionsConfig(), bus, data_dir, pin_factory=pins)
            async with actions:
                actions.attach(pipeline)
                results = await pipeline.run(ArraySource(recording)) if len(recording) else []
                for _ in range(int(linger / 0.1)):
                    if recorder.of("announcement") and pipeline.state != "speaking":
                        break  # announced, and done speaking
                    await asyncio.sleep(0.1)
                return results

    return asyncio.run(main()), recorder, sink


def pin_states(pins, pin):
    return [round(float(s.state), 2) for s in pins.pin(pin).states]


def test_spoken_commands_switch_the_pins_and_bad_ones_switch_nothing(engines, pins, tmp_path):
    # espeak-ng throughout: whisper tiny hears Piper's "porch light" after this sequence
    # as "pork swipe" (and espeak-ng's "brightness" as "right us": "set … to N percent"
    # is the brightness command without the word).
    recording = spoken(
        engines,
        ("espeak", "Turn on the porch light."),
        ("espeak", "Set the front light to thirty percent."),
        ("espeak", "Turn off the garage door."),
        ("espeak", "Set the porch light to three hundred percent."),
    )
    results, recorder, sink = converse(engines, recording, tmp_path, pins)
    replies = [r.reply for r in results]
    assert replies == [
        "The porch light is on.",
        "The porch light is at 30 percent.",
        "I don't know a device called garage door.",
        "Brightness goes from 0 to 100 percent, so I left the porch light as it was.",
    ], [r.transcript for r in results]
    assert pin_states(pins, 17)[:3] == [0, 1.0, 0.3]  # (released to 0 at close)
    assert pin_states(pins, 27) == [0, 0] or pin_states(pins, 27)[:1] == [0]
    assert 1.0 not in pin_states(pins, 27)
    actions = recorder.of("action")
    assert [(a.tool, a.ok, a.path) for a in actions] == [
        ("device_on", True, "intent"), ("device_brightness", True, "intent"),
        ("device_off", False, "intent"), ("device_brightness", False, "intent"),
    ]  # fmt: skip
    assert [h.handler for h in recorder.of("handled")] == ["intents"] * 4
    assert sink.seconds > 4  # the confirmations were spoken


def test_which_light_is_asked_and_the_spoken_answer_completes_it(engines, pins, tmp_path):
    recording = add_noise(compose(
        spoken(engines, ("espeak", "Turn on the light.")),
        tts_phrase(engines.tts, "The kitchen light."), 2.0,
    ))  # fmt: skip
    results, recorder, _ = converse(engines, recording, tmp_path, pins)
    assert [r.reply for r in results] == [
        "Which light: the porch light or the kitchen light?",
        "The kitchen light is on.",
    ], [r.transcript for r in results]
    assert 1 in pin_states(pins, 27) and 1.0 not in pin_states(pins, 17)


def test_a_spoken_timer_survives_a_restart_and_is_announced(engines, pins, tmp_path):
    results, first, _ = converse(
        engines, spoken(engines, "Set a timer for four seconds."), tmp_path, pins
    )
    assert [r.reply for r in results] == ["OK, four seconds, starting now."]
    (timer,) = first.of("timer")
    assert timer.state == "set" and timer.seconds == 4
    pins.reset()
    # The service stops; a new one starts on the same data directory.
    _, second, sink = converse(engines, spoken(engines)[:0], tmp_path, pins, linger=10.0)
    # "restored" first if the restart came before the timer's end, as it usually does.
    assert [t.state for t in second.of("timer")] in (["restored", "fired"], ["fired"])
    (announcement,) = second.of("announcement")
    assert announcement.text == "Your four second timer is done."
    assert sink.seconds > 1  # chime + Piper speaking it


def test_the_language_model_sets_a_named_timer_and_phrases_the_answer(engines, pins, tmp_path):
    """A request the command handler does not take goes to SmolLM2: its grammar-held call sets
    the timer with the length and the name from the words, and the spoken answer is the
    model's own sentence only if it keeps those facts (else the tool's template)."""
    # (Whisper tiny hears Piper's "a pasta countdown" as "a post account down", and "a
    # tea countdown" as "a T-count down": the names come after "countdown" here.)
    recording = spoken(
        engines,
        "Give me a ten minute countdown for the pasta.",
        ("espeak", "Give me a five minute countdown for the eggs."),
    )
    results, recorder, sink = converse(engines, recording, tmp_path, pins)
    assert len(results) == 2, [r.transcript for r in results]
    actions = recorder.of("action")
    assert [(a.tool, a.path, a.ok) for a in actions] == [("timer_set", "llm", True)] * 2, [
        (r.transcript, r.reply) for r in results
    ]
    assert [a.arguments for a in actions] == [
        {"seconds": 600, "name": "pasta"}, {"seconds": 300, "name": "eggs"},
    ]  # fmt: skip
    assert [(t.name, t.seconds, t.state) for t in recorder.of("timer")] == [
        ("pasta", 600, "set"), ("eggs", 300, "set"),
    ]  # fmt: skip
    assert [h.handler for h in recorder.of("handled")] == ["llm_tools"] * 2
    for result, action, name in zip(results, actions, ("pasta", "eggs"), strict=True):
        template = action.result
        assert template.startswith(f"OK, {name} timer for "), template
        facts = facts_of("timer_set", action.arguments, template, [d.name for d in DEVICES])
        assert result.reply == template or check(result.reply, facts) == "", result.reply
        assert name in result.reply.lower(), result.reply
    assert sink.seconds > 2


def test_the_models_phrasings_keep_the_facts_of_fifteen_results(engines):
    """SmolLM2 phrases the results of the bench's 15 requests; every sentence used keeps
    its result's facts, the others fall back to the template. The share it gets right is
    a figure of the model and the prompt: a change that lowers it fails here."""
    from appliance.bench.actions import PHRASING_REQUESTS, phrasing_acceptance

    measured = asyncio.run(phrasing_acceptance(engines.llm))
    results = measured["results"]
    assert len(results) == len(PHRASING_REQUESTS) == 15
    for row in results:
        if row["accepted"]:
            assert row["reason"] == "" and row["model"], row
        else:
            assert row["reason"], row
    spoken_facts = {
        "I need the porch light, it's dark": ("porch light", "on"),
        "could you give me a pasta countdown of ten minutes": ("pasta", "ten minutes"),
    }
    for row in results:
        if row["request"] in spoken_facts and row["accepted"]:
            said = row["model"].lower()
            assert all(fact in said for fact in spoken_facts[row["request"]]), row
    # 12 of 15 at temperature 0 when this was written (docs/actions.md "Tool calls by the language
    # model"); below 10 the prompt or the check has got worse.
    assert measured["accepted"] >= 10, [(r["model"], r["reason"]) for r in results]
    assert max(r["seconds"] for r in results) < 30  # capped at MAX_TOKENS


def test_appliance_ask_runs_commands_from_the_config_and_logs_them(tmp_path):
    from tests.fakes import appliance

    config = tmp_path / "config.toml"
    config.write_text(
        '[[devices]]\nname = "porch light"\ngpio = { pin = 17 }\n[actions]\npin_factory = "mock"\n'
    )
    env = {
        "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_MODELS_DIR": str(AppConfig().models_path()),
    }
    for text, reply in [
        ("Turn on the porch light.", "The porch light is on."),
        ("What's seventeen times twenty three?", "17 times 23 is 391."),
        ("Turn on the garage door.", "I don't know a device called garage door."),
    ]:
        proc = appliance("--config", str(config), "ask", text, env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == reply
    log = appliance("actions", "log", env=env)
    assert log.stdout.count("typed/intent") == 3, log.stdout
    assert "device_on(device='porch light') → The porch light is on." in log.stdout
    assert "FAIL typed/intent" in log.stdout
