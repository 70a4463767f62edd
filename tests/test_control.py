"""Request handlers and control from outside (mute, push-to-talk, announcements), with
fake engines passed in."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np

from appliance.audio.sinks import ClockSink
from appliance.audio.sources import ArraySource
from appliance.handlers import Handled
from appliance.pipeline import APOLOGY
from tests.fakes import loud, make_pipeline, quiet, request


class Lights:
    """A handler that claims "lights …" requests and records what it saw."""

    def __init__(self, reply: str = "Done.", *, follow_up: bool = False) -> None:
        self.reply = reply
        self.follow_up = follow_up
        self.seen: list[tuple[str, int]] = []

    async def handle(self, text: str, turn: int) -> Handled | None:
        self.seen.append((text, turn))
        if not text.lower().startswith("lights"):
            return None
        return Handled(self.reply, handler="fast_path", action="light_on", follow_up=self.follow_up)


class BrokenOnce:
    def __init__(self) -> None:
        self.calls = 0

    async def handle(self, text: str, turn: int) -> Handled | None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("relay board on fire")
        return None


def run(pipeline, samples, *, realtime=False, during=None):
    async def main():
        async with pipeline:
            task = asyncio.create_task(during(pipeline)) if during else None
            results = await pipeline.run(ArraySource(samples, realtime=realtime))
            if task:
                await task
            return results

    return asyncio.run(main())


def test_a_handler_answers_instead_of_the_llm():
    pipeline, rec, sink, tts, llm = make_pipeline(["Lights on please"], [])
    lights = Lights("The porch light is on.")
    pipeline.handlers.append(lights)
    (result,) = run(pipeline, request())
    assert result.outcome == "replied" and result.reply == "The porch light is on."
    assert llm.prompts == [] and tts.spoken == ["The porch light is on."]
    (handled,) = rec.of("handled")
    assert (handled.handler, handled.action, handled.turn) == ("fast_path", "light_on", 1)
    assert lights.seen == [("Lights on please", 1)]
    assert rec.of("llm_first_token") == [] and [e.text for e in rec.of("reply")] == [result.reply]
    assert pipeline.conversation.exchanges[0].assistant == "The porch light is on."


def test_requests_no_handler_claims_go_to_the_llm_in_order():
    pipeline, rec, sink, tts, llm = make_pipeline(["what is the time"], ["Noon."])
    first, second = Lights(), Lights()
    pipeline.handlers.extend([first, second])
    (result,) = run(pipeline, request())
    assert result.reply == "Noon." and result.handled is None
    assert first.seen == second.seen == [("what is the time", 1)]
    assert rec.of("handled") == []


def test_a_failing_handler_is_an_actions_error_and_the_next_turn_works():
    pipeline, rec, sink, tts, llm = make_pipeline(["lights off", "hello"], ["Hi."])
    pipeline.handlers.append(BrokenOnce())
    results = run(pipeline, np.concatenate([request(), request(lead=0.0)]))
    assert [r.outcome for r in results] == ["error", "replied"]
    (error,) = rec.of("error")
    assert error.stage == "actions" and "relay board on fire" in error.message
    assert tts.spoken == [APOLOGY, "Hi."] and len(llm.prompts) == 1


def test_a_handler_that_asks_back_opens_the_follow_up_window():
    pipeline, rec, sink, tts, llm = make_pipeline(["lights", "the porch one"], ["Okay."])
    talk = dataclasses.replace(pipeline.settings.conversation, follow_up_seconds=0.0)
    pipeline.settings = dataclasses.replace(pipeline.settings, conversation=talk)
    pipeline.handlers.append(Lights("Which light: porch or kitchen.", follow_up=True))
    samples = np.concatenate([request(trail=0.8), loud(1.0), quiet(1.5)])
    results = run(pipeline, samples)
    assert [r.transcript for r in results] == ["lights", "the porch one"]
    assert len(rec.of("follow_up")) == 1 and len(rec.of("wake")) == 1


def test_a_handler_with_nothing_to_say_ends_the_turn_quietly():
    pipeline, rec, sink, tts, llm = make_pipeline(["lights"], [])
    pipeline.handlers.append(Lights(""))
    (result,) = run(pipeline, request())
    assert result.outcome == "replied" and result.reply == ""
    assert tts.spoken == [] and rec.of("error") == [] and llm.prompts == []


def test_an_announcement_is_spoken_after_the_reply_that_is_playing():
    reply = "The first sentence of the reply. And the second sentence of it."
    pipeline, rec, sink, tts, llm = make_pipeline([], [reply], token_delay=0.05)

    async def main():
        async with pipeline:
            ask = asyncio.create_task(pipeline.ask("go"))
            await asyncio.sleep(0.01)
            await pipeline.say("  Your ten minute   timer is done. ")
            await ask

    asyncio.run(main())
    assert " ".join(tts.spoken[:-1]) == reply
    assert tts.spoken[-1] == "Your ten minute timer is done."
    (announcement,) = rec.of("announcement")
    assert announcement.text == "Your ten minute timer is done."
    assert [e.state for e in rec.of("state")][-2:] == ["speaking", "idle"]


def test_a_secret_said_aloud_is_not_in_the_announcement_event():
    pipeline, rec, sink, tts, llm = make_pipeline([], [])

    async def main():
        async with pipeline:
            await pipeline.say("Your pairing code is 1 2 3 4.", shown="Your pairing code is …")

    asyncio.run(main())
    assert tts.spoken == ["Your pairing code is 1 2 3 4."]
    assert [e.text for e in rec.of("announcement")] == ["Your pairing code is …"]


def test_the_wake_word_interrupts_an_announcement_and_the_request_is_answered():
    pipeline, rec, sink, tts, llm = make_pipeline(["what time is it"], ["Noon."])
    pipeline.sink = ClockSink()
    long_text = "This is a long announcement. " + " ".join(["it goes on"] * 40) + "."

    async def announce(p):
        await asyncio.sleep(0.05)
        await p.say(long_text, cue="done")

    samples = np.concatenate([request(lead=1.2), quiet(1)])
    results = run(pipeline, samples, realtime=True, during=announce)
    assert [r.transcript for r in results] == ["what time is it"]
    (interrupted,) = rec.of("interrupted")
    assert interrupted.by == "wake"
    assert pipeline.sink.played_seconds() < 0.1 * len(long_text.split())


def test_muted_means_no_wake_word_until_unmuted():
    pipeline, rec, sink, tts, llm = make_pipeline(["first", "second"], ["One.", "Two."])

    async def mute_then_unmute(p):
        p.set_muted(True, by="switch")
        assert p.listen_now(by="button") is False  # muted: push-to-talk refused too
        await asyncio.sleep(2.0)
        p.set_muted(False, by="switch")

    samples = np.concatenate([request(trail=1.6), request(lead=0.0), quiet(0.5)])
    results = run(pipeline, samples, realtime=True, during=mute_then_unmute)
    assert [r.transcript for r in results] == ["first"]  # the first wake word was not heard
    assert [(e.muted, e.by) for e in rec.of("muted")] == [(True, "switch"), (False, "switch")]
    states = [e.state for e in rec.of("state")]
    assert "muted" in states and states[-1] == "idle"
    assert len(rec.of("wake")) == 1


def test_push_to_talk_captures_a_request_without_the_wake_word():
    pipeline, rec, sink, tts, llm = make_pipeline(["what time is it"], ["Noon."])
    assert pipeline.listen_now(by="button") is False  # nothing is listening yet

    async def press(p):
        await asyncio.sleep(0.3)
        assert p.listen_now(by="button") is True

    samples = np.concatenate([quiet(0.8), loud(1.0), quiet(1.5)])
    (result,) = run(pipeline, samples, realtime=True, during=press)
    assert result.transcript == "what time is it" and result.reply == "Noon."
    (wake,) = rec.of("wake")
    assert (wake.wake_word, wake.score) == ("button", 1.0)
    assert pipeline.listen_now(by="button") is False  # the run is over


def test_a_typed_request_is_a_turn_with_a_transcript_event():
    pipeline, rec, sink, tts, llm = make_pipeline([], ["Four."])

    async def main():
        async with pipeline:
            return await pipeline.ask("what is two and two")

    result = asyncio.run(main())
    assert result.reply == "Four."
    [transcript] = rec.of("transcript")
    assert (transcript.text, transcript.stt_seconds) == ("what is two and two", 0.0)
    assert transcript.turn == result.turn
