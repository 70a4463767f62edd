"""The command handler end to end on spoken audio: Piper/espeak-ng speech → openWakeWord →
Silero VAD → whisper.cpp tiny.en (without a bias prompt, the default; with it, opt-in, in
the last test) → IntentHandler (hassil + rapidfuzz) → tools → Piper. Devices are gpiozero
MockFactory pins and an MQTT switch on a real mosquitto; the actions are joined to the
pipeline by `actions_for`, as `appliance run` joins them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance import events as ev
from appliance.audio.sinks import RecordingSink
from appliance.audio.sources import ArraySource
from appliance.bench.recordings import pink_noise
from appliance.config import SttConfig
from appliance.engines import load_engines, pipeline_settings
from appliance.house import actions_for
from appliance.mqtt.device import MqttDevices
from appliance.mqtt.link import MqttLink
from appliance.mqtt.outbox import Outbox
from appliance.pipeline import Pipeline, TurnResult
from appliance.sections.devices import DeviceConfig, GpioOutput
from appliance.testing.speech import add_noise, compose, paused_sentence, tts_phrase, voiced_end
from appliance.understanding.handler import ACT_SCORE
from appliance.understanding.recognition import NAME_MIN_SCORE
from tests.fakes import Recorder, repeatable_config
from tests.mqtt_broker import Mosquitto, subscriber
from tests.test_actions_e2e import pin_states, spoken
from tests.test_mqtt_link import config as mqtt_config
from tests.test_mqtt_link import until

pytestmark = pytest.mark.e2e

PORCH, BED = 17, 18
LIGHTS = [
    DeviceConfig("porch light", "light", (), "outside", GpioOutput(PORCH)),
    DeviceConfig("bed light", "light", (), "bedroom", GpioOutput(BED, pwm=True)),
]
FOUNTAIN = DeviceConfig(
    "garden fountain",
    "switch",
    mqtt={"command_topic": "garden/fountain/set", "state_topic": "garden/fountain"},
)


@pytest.fixture(scope="module")
def engines():
    return load_engines(repeatable_config())


@pytest.fixture
def pins():
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()


@pytest.fixture
def data(tmp_path, monkeypatch):
    """`actions_for` keeps timers and the audit log in $APPLIANCE_DATA_DIR: this test's."""
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@dataclass
class Heard:
    results: list[TurnResult]
    recorder: Recorder
    before: dict[int, list[float]]
    """Each device pin's state history before the recording was played."""
    timers_before: list[Any]
    timers_after: list[Any]
    """The timers still active (running or paused) when the recording had been answered."""
    prompt: str
    """The bias prompt whisper was given."""
    sink: RecordingSink

    @property
    def transcripts(self) -> list[str]:
        return [r.transcript for r in self.results]

    @property
    def replies(self) -> list[str]:
        return [r.reply for r in self.results]

    def of(self, kind: str) -> list[Any]:
        return self.recorder.of(kind)

    def story(self) -> list[tuple[str, str]]:
        """What was heard and said, for assertion messages."""
        return [(r.transcript, r.reply) for r in self.results]


async def talk(
    engines: Any, recording: np.ndarray, pins: MockFactory, devices: list[DeviceConfig],
    *, make_mqtt: Any = None, **changes: Any,
) -> Heard:  # fmt: skip
    """Play `recording` to a pipeline with the actions of a config holding `devices`
    (and `changes` to the rest of the config)."""
    config = repeatable_config(devices=devices, **changes)
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    sink = RecordingSink()
    async with (
        Pipeline(engines, sink, bus, pipeline_settings(config)) as pipeline,
        actions_for(config, pipeline, pin_factory=pins, make_mqtt=make_mqtt) as actions,
    ):
        gpio = [d.gpio.pin for d in devices if d.gpio is not None]
        before = {pin: pin_states(pins, pin) for pin in gpio}
        timers_before = actions.timers.active()
        results = await pipeline.run(ArraySource(recording))
        return Heard(results, recorder, before, timers_before, actions.timers.active(),
                     pipeline.stt_prompt, sink)  # fmt: skip


def assert_replies_are_what_ran(heard: Heard) -> None:
    """Every reply is the intent handler's and says exactly what the tool calls of its turn
    returned (a tool's success sentence only when it ran): nothing claimed beyond that."""
    for result in heard.results:
        ran = [a for a in heard.of("action") if a.turn == result.turn]
        assert result.handled is not None and result.handled.handler == "intents", result
        assert ran, (result.transcript, result.reply)
        assert result.reply == " ".join(a.result for a in ran), (result.reply, ran)


def test_spoken_commands_switch_a_pin_and_dim_a_pwm_pin(engines, pins, data):
    recording = spoken(engines, "Turn on the porch light.", "Set the bed light to 50 percent.")
    # With the house's prompt (stt.bias): without it tiny.en heard Piper's "bed light" as
    # "bed like" (and the appliance rightly asked "Did you mean the bed light?").
    heard = asyncio.run(talk(engines, recording, pins, LIGHTS, stt=SttConfig(bias=True)))
    assert "the porch light" in heard.prompt.lower()
    assert heard.before == {PORCH: [0.0], BED: [0.0]}  # off before anything was said
    assert heard.replies == ["The porch light is on.", "The bed light is at 50 percent."], (
        heard.story()
    )
    assert [(a.tool, a.arguments, a.ok, a.path) for a in heard.of("action")] == [
        ("device_on", {"device": "porch light"}, True, "intent"),
        ("device_brightness", {"device": "bed light", "percent": 50.0}, True, "intent"),
    ]  # fmt: skip
    assert [(i.intent, i.slots.get("name")) for i in heard.of("intent")] == [
        ("HassTurnOn", "porch light"), ("HassLightSet", "bed light"),
    ]  # fmt: skip
    assert all(i.path in ("library", "fuzzy") for i in heard.of("intent"))
    assert [h.handler for h in heard.of("handled")] == ["intents"] * 2
    assert_replies_are_what_ran(heard)
    # On once, then released to 0 when the actions closed; the PWM pin at half.
    assert pin_states(pins, PORCH) == [0.0, 1.0, 0.0]
    assert pin_states(pins, BED) == [0.0, 0.5, 0.0]
    assert heard.sink.seconds > 2  # the replies were spoken by Piper


def test_two_spoken_commands_in_one_request_switch_both_pins(engines, pins, data):
    """ "Turn on the porch light and the bed light.": both, each said (it matched nothing
    as one sentence and went to the language model)."""
    recording = spoken(engines, "Turn on the porch light and the bed light.")
    # With the house's prompt: without it tiny.en heard "… the porch light in the bed
    # light." (and the appliance rightly asked "Did you mean the porch light?").
    heard = asyncio.run(talk(engines, recording, pins, LIGHTS, stt=SttConfig(bias=True)))
    ran = [(a.tool, a.arguments, a.ok) for a in heard.of("action")]
    assert ran == [("device_on", {"device": "porch light"}, True),
                   ("device_on", {"device": "bed light"}, True)], heard.story()  # fmt: skip
    assert heard.replies == ["The porch light is on. The bed light is on."], heard.story()
    assert pin_states(pins, PORCH) == [0.0, 1.0, 0.0] and pin_states(pins, BED) == [0.0, 1.0, 0.0]


def test_a_spoken_command_reaches_an_mqtt_device_on_a_real_broker(engines, pins, data):
    broker = Mosquitto(data / "broker").start()
    outbox = Outbox(data / "outbox.sqlite3", 100)
    link = MqttLink(mqtt_config(broker.port), outbox)
    # ("Turn off …" in espeak-ng's voice is heard as "It's turn off …" here, and asked about.)
    recording = spoken(
        engines,
        ("espeak", "Switch on the garden fountain."),
        ("espeak", "Switch off the garden fountain."),
    )

    async def main() -> tuple[list[tuple[str, str]], list[tuple[str, str]], Heard]:
        task = asyncio.create_task(link.run())
        try:
            async with subscriber(broker.port, "garden/#") as (_, seen):
                await until(lambda: link.connected)
                before = [(t, p) for t, p, _ in seen.messages]
                devices = [LIGHTS[0], FOUNTAIN]
                heard = await talk(
                    engines, recording, pins, devices, make_mqtt=MqttDevices(link).make_mqtt_backend
                )
                with contextlib.suppress(TimeoutError):  # the assertion says what came
                    await seen.wait_for(lambda s: len(s.messages) >= 2)
                return before, [(t, p) for t, p, _ in seen.messages], heard
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            outbox.close()
            broker.stop()

    before, messages, heard = asyncio.run(main())
    assert before == []
    assert messages == [("garden/fountain/set", "ON"), ("garden/fountain/set", "OFF")], (
        heard.story()
    )
    assert [(a.tool, a.arguments, a.ok, a.path) for a in heard.of("action")] == [
        ("device_on", {"device": "garden fountain"}, True, "intent"),
        ("device_off", {"device": "garden fountain"}, True, "intent"),
    ], heard.story()
    assert_replies_are_what_ran(heard)
    assert 1.0 not in pin_states(pins, PORCH)  # the other device was left alone


def test_a_timer_is_set_paused_resumed_and_cancelled_by_voice(engines, pins, data):
    recording = spoken(
        engines,
        ("espeak", "Set a timer for ten minutes."),
        ("espeak", "Pause the timer."),
        ("espeak", "Resume the timer."),
        ("espeak", "Cancel the timer."),
    )
    # With the prompt: without it, espeak-ng's "Cancel the timer." was heard "Can Soul Matimer."
    heard = asyncio.run(talk(engines, recording, pins, LIGHTS, stt=SttConfig(bias=True)))
    assert heard.timers_before == []
    timers = heard.of("timer")
    assert [t.state for t in timers] == ["set", "paused", "resumed", "cancelled"], heard.story()
    assert len({t.timer_id for t in timers}) == 1
    assert all(t.seconds == 600 for t in timers)
    assert [(a.tool, a.ok) for a in heard.of("action")] == [
        ("timer_set", True), ("timer_pause", True), ("timer_resume", True),
        ("timer_cancel", True),
    ]  # fmt: skip
    assert [i.intent for i in heard.of("intent")] == [
        "HassStartTimer", "HassPauseTimer", "HassUnpauseTimer", "HassCancelTimer",
    ]  # fmt: skip
    assert heard.replies[0] == "OK, ten minutes, starting now."
    assert heard.replies[1].startswith("Paused the ten minute timer")
    assert heard.replies[2].startswith("Resumed the ten minute timer")
    assert heard.replies[3] == "Cancelled the ten minute timer."
    assert_replies_are_what_ran(heard)
    assert heard.timers_after == []  # none running, none paused
    assert heard.of("announcement") == []


def test_a_misheard_name_is_asked_about_and_yes_switches_it(engines, pins, data):
    """The house has a "porch lamp"; the speaker says "porch lantern", which whisper
    writes as said: a name between the name and act thresholds. The appliance asks, and
    "yes, please" in the follow-up window (no wake word) switches the pin."""
    lamp = [DeviceConfig("porch lamp", "light", (), "outside", GpioOutput(PORCH))]
    recording = add_noise(compose(
        spoken(engines, "Turn on the porch lantern."),
        tts_phrase(engines.tts, "Yes, please."), 2.0,
    ))  # fmt: skip
    heard = asyncio.run(talk(engines, recording, pins, lamp))
    assert heard.before == {PORCH: [0.0]}
    assert len(heard.results) == 2, heard.story()
    asked, answered = heard.results
    assert "lantern" in asked.transcript.lower(), heard.story()
    assert asked.reply == "Did you mean the porch lamp?", heard.story()
    assert asked.handled is not None and asked.handled.follow_up
    assert "yes" in answered.transcript.lower(), heard.story()
    assert answered.reply == "The porch lamp is on.", heard.story()
    # The question was recognised as a middling match: neither dropped nor acted on.
    first, second = heard.of("intent")
    assert (first.turn, first.intent, first.path) == (asked.turn, "HassTurnOn", "confirm")
    assert first.slots.get("name") == "porch lamp"
    assert NAME_MIN_SCORE <= first.score < ACT_SCORE, first
    assert (second.turn, second.path) == (answered.turn, "confirm")
    # Nothing ran on the question; the "yes" ran it; only one wake word was said.
    assert [(a.turn, a.tool, a.arguments, a.ok) for a in heard.of("action")] == [
        (answered.turn, "device_on", {"device": "porch lamp"}, True),
    ]
    assert len(heard.of("wake")) == 1 and len(heard.of("follow_up")) >= 1
    assert pin_states(pins, PORCH) == [0.0, 1.0, 0.0]


def porch_light_in_espeak(engines: Any) -> np.ndarray:
    return spoken(engines, ("espeak", "Turn on the porch light."))


def test_the_porch_light_command_without_the_bias_prompt_is_done(engines, pins, data):
    """The control for the test below: the same recording, whisper without a prompt."""
    heard = asyncio.run(
        talk(engines, porch_light_in_espeak(engines), pins, LIGHTS, stt=SttConfig(bias=False))
    )
    assert heard.prompt == ""
    assert heard.transcripts == ["Turn on the porch light."], heard.story()
    assert heard.replies == ["The porch light is on."]
    assert pin_states(pins, PORCH) == [0.0, 1.0, 0.0]


def test_the_porch_light_command_with_the_bias_prompt_is_done(engines, pins, data):
    heard = asyncio.run(
        talk(engines, porch_light_in_espeak(engines), pins, LIGHTS, stt=SttConfig(bias=True))
    )
    assert heard.prompt  # bias on
    assert heard.replies == ["The porch light is on."], heard.story()
    assert pin_states(pins, PORCH) == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("weigh", [True, False])
def test_the_actions_weigh_sentences_with_the_pipelines_whisper(engines, pins, data, weigh):
    """`actions_for` hands the recognizer whisper's sentence scoring (run on the STT
    stage's thread, as transcriptions are), unless `stt.weigh` is off."""
    from appliance.testing.speech import espeak_phrase

    config = repeatable_config(devices=LIGHTS, stt=SttConfig(weigh=weigh))
    audio = add_noise(compose(0.4, espeak_phrase("Set the bed light to fifty percent."), 0.6))

    async def main() -> list[float] | None:
        async with (
            Pipeline(engines, RecordingSink(), ev.EventBus(), pipeline_settings(config)) as pipe,
            actions_for(config, pipe, pin_factory=pins) as actions,
        ):
            scorer = actions.recognizer.scorer
            if scorer is None:
                return None
            heard = await pipe.in_stage("stt", engines.stt.transcribe, audio / 32768)
            return await asyncio.to_thread(
                scorer, heard, ["Set the bed light to 50%.", "Set the porch light to 50%."]
            )

    scores = asyncio.run(main())
    if not weigh:
        assert scores is None
        return
    assert scores is not None and scores[0] > scores[1]


@pytest.mark.parametrize("relisten", [True, False])
def test_the_actions_hear_again_with_the_houses_words_through_the_pipeline(
    engines, pins, data, relisten
):
    """`actions_for` hands the recognizer whisper's second listen, prompted with the
    house's names (on the STT stage's thread), unless `stt.relisten` is off."""
    from appliance.testing.speech import espeak_phrase

    config = repeatable_config(devices=LIGHTS, stt=SttConfig(relisten=relisten))
    audio = add_noise(compose(0.4, espeak_phrase("Turn on the porch light."), 0.6))

    async def main() -> tuple[str, str | None] | None:
        async with (
            Pipeline(engines, RecordingSink(), ev.EventBus(), pipeline_settings(config)) as pipe,
            actions_for(config, pipe, pin_factory=pins) as actions,
        ):
            again = actions.recognizer.relisten
            if again is None:
                return None
            heard = await pipe.in_stage("stt", engines.stt.transcribe, audio / 32768)
            return heard, await asyncio.to_thread(again, heard)

    result = asyncio.run(main())
    if not relisten:
        assert result is None
        return
    assert result is not None and result[1] and "porch light" in result[1].lower(), result


def _paused_timer_request(engines: Any, noise_in_pause: bool) -> tuple[np.ndarray, float]:
    """ "Hey Jarvis. Set a timer for … ten minutes." with 1.2 s between "for" and "ten",
    the first half keeping the sentence's unfinished melody; and where the last word ends.
    (Silero hears a word's fading end as speech: 0.7 s of quiet was not 0.7 s to the VAD,
    too near the fixed silence to show it cutting.)"""
    spoken = paused_sentence("Set a timer for", "ten minutes.", 1.2, tts=engines.tts)
    samples = spoken.samples.copy()
    if noise_in_pause:  # a 0.2 s burst of pink noise at -30 dBFS inside the pause
        burst = (pink_noise(3200, seed=3) * 10 ** (-30 / 20) * 32768).astype(np.int16)
        at = int((spoken.resumes - 0.6) * 16000)
        samples[at : at + len(burst)] = np.clip(samples[at : at + len(burst)] + burst,
                                                -32768, 32767)  # fmt: skip
    head = compose(0.5, tts_phrase(engines.tts, "Hey Jarvis."), 0.3)
    end = len(head) / 16000 + voiced_end(spoken.samples)
    return add_noise(compose(head, samples, 3.0)), end


@pytest.mark.parametrize("noise_in_pause", [False, True], ids=["quiet pause", "noise burst"])
def test_a_sentence_with_a_pause_in_it_is_one_request(engines, pins, data, noise_in_pause):
    """The smart end-of-turn (Smart Turn and the words so far) waits through the pause
    that the fixed 0.7 s silence cuts, and still ends soon after the last word."""
    recording, last_word = _paused_timer_request(engines, noise_in_pause)
    heard = asyncio.run(talk(engines, recording, pins, LIGHTS))
    assert engines.turn is not None  # the default end-pointer is the smart one
    assert len(heard.of("speech_end")) == 1, heard.story()
    assert [(t.state, t.seconds) for t in heard.of("timer")] == [("set", 600)], heard.story()
    judged = heard.of("end_of_turn")
    assert judged[0].decision == "wait" and judged[-1].decision == "end", judged
    ended = heard.of("speech_end")[0].stream_time
    assert ended - last_word < 1.0  # not the 2 s longest pause
    assert_replies_are_what_ran(heard)


def test_the_fixed_silence_cuts_the_same_sentence(engines, pins, data):
    """The same recording with `listen.end_of_turn = "silence"`: answered at the pause
    (the comparison the benchmark makes, as a check that the test above can fail)."""
    recording, _ = _paused_timer_request(engines, noise_in_pause=False)
    fixed = dataclasses.replace(engines, turn=None)
    heard = asyncio.run(talk(fixed, recording, pins, LIGHTS))
    assert heard.of("end_of_turn") == []
    # Cut after "for": two requests ("For how long?" then opens a follow-up that the
    # second half happens to answer; a pause before anything else has no such luck).
    assert len(heard.of("speech_end")) == 2, heard.story()
    assert "10" not in heard.transcripts[0] and "ten" not in heard.transcripts[0]
