"""One run of the audio loop over one source (`Pipeline.run`): the wake word, capturing
a request, its turn, a follow-up window, and listening while the appliance answers.

Each chunk goes to one place, by the state the loop is in:

- muted: dropped (a request being captured is dropped too);
- push-to-talk asked for: a request starts now;
- a turn is being answered: first, if the judge ended it at a pause, the speaker may go
  on (the turn is then taken back, `withdraw`); else barge-in listens (`BargeIn.hear`);
- nothing going on: the wake word;
- a request being captured: VAD, the end-pointer, and at pauses the end-of-turn judge.

A session belongs to its pipeline: it uses the pipeline's engines, stage threads, turn
counter and state, and keeps only what one run needs (the end-pointer, the turn task).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from appliance import events as ev
from appliance.audio.format import PIPELINE_RATE, AudioChunk
from appliance.audio.sources import AudioSource
from appliance.audio.vad import (
    Endpointer,
    EndpointSettings,
    NoSpeech,
    Paused,
    PreRoll,
    SpeechEnded,
    SpeechStarted,
)
from appliance.errors import WakeWordError
from appliance.handlers import forget_pending
from appliance.pipeline.arbitration import speech_level
from appliance.pipeline.remote import remote_turn
from appliance.pipeline.stages import Stage
from appliance.pipeline.types import State, TurnResult
from appliance.stt.base import LiveStt

if TYPE_CHECKING:
    from appliance.pipeline.core import Pipeline

_LOGGER = logging.getLogger(__name__)

Outcome = SpeechStarted | SpeechEnded | NoSpeech | None


class Session:
    def __init__(self, pipeline: Pipeline, source: AudioSource) -> None:
        self.pipeline = pipeline
        self.source = source
        self.settings: EndpointSettings = pipeline.settings.endpoint
        self.pre_roll = PreRoll(self.settings.pre_roll_seconds + 0.2)
        self.listen = pipeline._stages[Stage.LISTEN]
        self.engines = pipeline._listening()
        self.endpointer: Endpointer | None = None
        """The request being captured, if any."""
        self.follow_up = False
        """That request is heard in a follow-up window (no wake word)."""
        self.turn_task: asyncio.Task[TurnResult] | None = None
        self.withdrawable: tuple[Endpointer, TurnResult] | None = None
        """A turn the judge ended at a pause, while the speaker may still go on."""
        self.remote_turn = False
        """The request being captured goes to another assistant too (`pipeline.remote`)."""
        self.remote_task: asyncio.Task[TurnResult] | None = None
        stt = self.engines.stt
        self.live_stt = stt if isinstance(stt, LiveStt) else None
        """Speech-to-text that takes the request while it is heard (a remote one)."""

    async def run(self) -> None:
        pipeline = self.pipeline
        pipeline._set_idle()
        pipeline._live = self.source.live
        pipeline.turn_taking.started()
        # A new source may be another microphone in another place: learn the room afresh.
        await self.listen.run(pipeline.echo.reset)
        try:
            async for chunk in self.source.chunks():
                await self._hear(self._stamped(chunk))
            await self._input_ended()
        finally:
            pipeline._live = False
            if self.live_stt is not None:
                self.live_stt.end_live()
            turn = [self.turn_task] if self.turn_task else []
            for task in [*pipeline.barge_in.checks, *pipeline.preparing, *turn]:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        pipeline._set_idle()

    def _stamped(self, chunk: AudioChunk) -> AudioChunk:
        self.pipeline._stream_time = chunk.end
        if not chunk.captured_at:
            return chunk
        captured = self.pipeline._capture_timeline.stamp(chunk.captured_at, chunk.duration)
        return dataclasses.replace(chunk, captured_at=captured)

    async def _hear(self, chunk: AudioChunk) -> None:
        pipeline = self.pipeline
        if pipeline._muted:
            await self._while_muted()
            return
        if pipeline._listen_request and await self._listen_now(chunk):
            return
        task = self.turn_task
        if task is not None and self.endpointer is None and (task.done() or not self.source.live):
            await self._turn_over(chunk)
        busy = self.turn_task is not None or pipeline.speaker.announcing > 0
        if busy and self.endpointer is None:
            if self.withdrawable is not None and await self._watch_for_more(chunk):
                return
            await self._while_answering(chunk)
        elif self.endpointer is None:
            await self._wait_for_wake(chunk)
        else:
            await self._capture(self.endpointer, chunk)

    async def _while_muted(self) -> None:
        self.withdrawable = None
        if self.endpointer is not None:  # muted mid-request: drop what was heard
            self.endpointer = None
            self._drop_remote()
            if self.live_stt is not None:
                self.live_stt.end_live()
            self.pipeline.turn_taking.drop()
            self.pre_roll.clear()
            if self.turn_task is None:
                self.pipeline._set_idle()
        if self.turn_task is not None and self.turn_task.done():
            await self.turn_task
            self.turn_task = None

    async def _listen_now(self, chunk: AudioChunk) -> bool:
        """Push-to-talk: True when a request starts now."""
        pipeline = self.pipeline
        by, pipeline._listen_request = pipeline._listen_request, ""
        if self.endpointer is not None and not self.follow_up:
            return False
        pipeline.interrupt(by)
        await self._woken(by, 1.0)
        self._begin(self.settings, [], chunk.end, follow_up=False)
        return True

    async def _turn_over(self, chunk: AudioChunk) -> None:
        assert self.turn_task is not None
        finished = await self.turn_task
        self.turn_task = self.withdrawable = None
        pipeline = self.pipeline
        await self.listen.run(self.engines.wake.reset)
        # The canceller keeps what it learnt of the room for the next reply: a cold one
        # removes only 4–14 dB in a reply's first seconds, where its own "I am Jarvis"
        # woke it in half of such replies.
        self.pre_roll.clear()
        window = self._follow_up_window(finished)
        if window <= 0:
            pipeline._set_idle()
            return
        # Listen for a follow-up without the wake word.
        await self.listen.run(self.engines.vad.reset)
        settings = dataclasses.replace(self.settings, no_speech_timeout=window)
        self._begin(settings, [], chunk.start, follow_up=True)
        if finished.remote_continues and pipeline.remote is not None:
            # The other assistant asked something: its answer goes there too.
            self.remote_turn = pipeline.remote.begin(pipeline._turn + 1, "")
        pipeline._window_after = finished.reply
        pipeline._set_state(State.FOLLOW_UP)
        pipeline._publish(ev.FollowUp, seconds=window)

    def _follow_up_window(self, result: TurnResult) -> float:
        """Seconds to listen without the wake word after a turn (conversation.follow_up):
        "asked" only after a reply that asks something or a handler that expects more,
        "always" after every reply, "never" not at all."""
        talk = self.pipeline.settings.conversation
        if result.outcome != "replied" or talk.follow_up == "never":
            return 0.0  # errors, "stop", interruptions, ignored talk: back to the wake word
        if result.remote_continues:
            return talk.question_follow_up_seconds
        asks = result.handled is not None and result.handled.follow_up
        if asks or result.reply.rstrip().endswith("?"):
            return talk.question_follow_up_seconds
        return talk.follow_up_seconds if talk.follow_up == "always" else 0.0

    async def _watch_for_more(self, chunk: AudioChunk) -> bool:
        """After a turn the judge ended at a pause: True when this chunk was taken (the
        watch goes on, or the turn was taken back because the speaker went on)."""
        assert self.withdrawable is not None and self.turn_task is not None
        ended, result = self.withdrawable
        going_on = await self._goes_on(chunk, ended, result)
        if going_on is True and not self.turn_task.done():  # the same request
            await self._withdraw(self.turn_task, result)
            self.turn_task = self.withdrawable = None
            self.endpointer = ended
            ended.reopen()
            return True
        if going_on is False:
            return True
        self.withdrawable = None
        return False

    async def _goes_on(
        self, chunk: AudioChunk, ended: Endpointer, result: TurnResult
    ) -> bool | None:
        """True: the speaker went on while nothing of the answer had happened yet
        (withdraw it); False: keep watching; None: the watch is over (the turn acted or
        spoke, or the pause grew longer than any pause inside a request)."""
        if result.committed or not ended.may_go_on(chunk.end):
            return None
        probability = await self.listen.run(self.engines.vad.speech_probability, chunk.samples)
        more = ended.hear_more(chunk, probability)
        # While a handler decides it may be acting: wait for its verdict.
        return more and not result.handling and not result.committed

    async def _withdraw(self, turn_task: asyncio.Task[TurnResult], result: TurnResult) -> None:
        """Take back a turn that ended too early: it is cancelled before it acted or said
        anything (`TurnResult.committed`), and its request goes on being heard."""
        pipeline = self.pipeline
        turn_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await turn_task
        with contextlib.suppress(ValueError):
            pipeline.results.remove(result)
        if result.handled is not None:  # it may have asked back: that question is void
            await forget_pending(pipeline.handlers)
        _LOGGER.info("turn %d: the speaker went on after %r; listening on", result.turn,
                     result.transcript)  # fmt: skip
        pipeline._publish(ev.TurnEnd, turn=result.turn, outcome="resumed")
        pipeline._set_state(State.LISTENING)

    async def _while_answering(self, chunk: AudioChunk) -> None:
        """Answering (live source): listen for an interruption meanwhile."""
        detection = await self.pipeline.barge_in.hear(chunk, self.engines, self.pre_roll)
        if detection is not None:
            await self._woken(detection.wake_word, detection.score)
            self._begin(self.settings, self.pre_roll.snapshot(), chunk.end, follow_up=False)

    async def _wait_for_wake(self, chunk: AudioChunk) -> None:
        self.pre_roll.append(chunk)
        try:
            detection = await self.listen.run(self.engines.wake.process, chunk.samples)
        except Exception as err:
            raise WakeWordError(f"wake word detection failed: {err}") from err
        if detection is None:
            return
        arbiter = self.pipeline.arbiter
        if arbiter is not None:  # other rooms may have heard it too: the best one answers
            level = speech_level(self.pre_roll.snapshot())
            if not await arbiter.decide(detection.wake_word, detection.score, level):
                await self.listen.run(self.engines.wake.reset)
                self.pre_roll.clear()
                return
        await self._woken(detection.wake_word, detection.score)
        self._begin(self.settings, self.pre_roll.snapshot(), chunk.end, follow_up=False)

    async def _capture(self, endpointer: Endpointer, chunk: AudioChunk) -> None:
        pipeline = self.pipeline
        if self.remote_turn and pipeline.remote is not None:
            pipeline.remote.audio(chunk.samples)
        probability = await self.listen.run(self.engines.vad.speech_probability, chunk.samples)
        outcome = endpointer.feed(chunk, probability)
        if self.live_stt is not None and not self.remote_turn:
            if isinstance(outcome, SpeechStarted):
                self.live_stt.begin_live(endpointer.heard())
            elif endpointer.in_speech:
                self.live_stt.feed_live(chunk.samples)
        judged = isinstance(outcome, Paused)
        if isinstance(outcome, Paused):
            outcome = await pipeline.turn_taking.at_pause(endpointer, outcome)
        if isinstance(outcome, SpeechEnded) and self.turn_task is not None:
            await self.turn_task  # the interrupted reply winds down first
            self.turn_task = None
        assert not isinstance(outcome, Paused)
        self.turn_task = self._on_endpoint(outcome)
        # A request sent whole to another assistant is never taken back at a pause.
        if judged and self.source.live and isinstance(outcome, SpeechEnded) and \
                self.turn_task is not self.remote_task:  # fmt: skip
            assert pipeline._spoken is not None
            self.withdrawable = (endpointer, pipeline._spoken)
        if outcome is not None and not isinstance(outcome, SpeechStarted):
            self.endpointer = None

    async def _input_ended(self) -> None:
        if self.endpointer is not None:
            if self.turn_task is not None:
                await self.turn_task
                self.turn_task = None
            ended = self.endpointer.flush(self.pipeline._stream_time)
            assert not isinstance(ended, Paused)
            self.turn_task = self._on_endpoint(ended)
        if self.turn_task is not None:
            await self.turn_task

    def _begin(
        self, settings: EndpointSettings, pre_roll: list[AudioChunk], start: float, *,
        follow_up: bool,
    ) -> None:  # fmt: skip
        """Capture a request from now (after the wake word, the button, or a reply)."""
        asks = self.pipeline.turn_taking.asks_at_pauses
        self.endpointer = Endpointer(settings, pre_roll, start, asks_at_pauses=asks)
        self.follow_up = follow_up
        if follow_up:
            self.remote_turn = False
        # Another assistant gets the audio from after the wake word, as a Voice PE sends
        # it: the pre-roll (the wake word itself) would be heard there as the request.

    async def _woken(self, wake_word: str, score: float) -> None:
        pipeline = self.pipeline
        pipeline._turn += 1
        pipeline._publish(ev.Wake, wake_word=wake_word, score=score)
        pipeline._set_state(State.LISTENING)
        await pipeline.turns.cue("wake")
        # The wake detector is not fed while a request is captured; start it clean
        # afterwards rather than on a buffer with a hole in it.
        await self.listen.run(self.engines.wake.reset)
        await self.listen.run(self.engines.vad.reset)
        if pipeline.engines.stop is not None:
            pipeline.engines.stop.reset()
        await forget_pending(pipeline.handlers)  # a new request: no pending "which light?"
        self._drop_remote()
        if self.live_stt is not None:
            self.live_stt.end_live()
        if pipeline.remote is not None:
            self.remote_turn = pipeline.remote.begin(pipeline._turn, wake_word)

    def _drop_remote(self) -> None:
        """The request being sent to another assistant will not be finished: drop it."""
        if self.remote_turn and self.pipeline.remote is not None:
            self.pipeline.remote.abort(self.pipeline._turn)
        self.remote_turn = False

    def _on_endpoint(self, outcome: Outcome) -> asyncio.Task[TurnResult] | None:
        pipeline = self.pipeline
        if isinstance(outcome, SpeechStarted):
            if self.follow_up:
                pipeline._turn += 1  # a follow-up turn begins when its speech does
                pipeline._set_state(State.LISTENING)
            pipeline._publish(ev.SpeechStart, stream_time=round(outcome.time, 3))
        elif isinstance(outcome, NoSpeech) and self.follow_up:
            self._drop_remote()
            pipeline._set_idle()  # the follow-up window closed unused
        elif isinstance(outcome, NoSpeech):
            self._drop_remote()
            pipeline.results.append(TurnResult(pipeline._turn, outcome="no_speech"))
            pipeline._publish(ev.TurnEnd, outcome="no_speech")
            pipeline._set_idle()
        elif isinstance(outcome, SpeechEnded):
            pipeline._publish(
                ev.SpeechEnd,
                stream_time=round(outcome.end, 3),
                speech_seconds=round(len(outcome.audio) / PIPELINE_RATE, 3),
                timed_out=outcome.timed_out,
            )
            answering = pipeline._window_after if self.follow_up else None
            result = TurnResult(pipeline._turn, utterance=outcome.audio)
            pipeline._spoken = result
            if self.remote_turn and pipeline.remote is not None:
                self.remote_turn = False
                self.remote_task = asyncio.create_task(
                    remote_turn(pipeline, pipeline.remote, result, outcome, time.monotonic(),
                                answering),
                    name=f"turn-{pipeline._turn}-remote",
                )  # fmt: skip
                return self.remote_task
            return asyncio.create_task(
                pipeline._spoken_turn(result, outcome, time.monotonic(), answering),
                name=f"turn-{pipeline._turn}",
            )
        return self.turn_task
