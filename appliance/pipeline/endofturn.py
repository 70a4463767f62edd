"""Turn-taking: deciding at each pause whether the request is over, and transcribing it
meanwhile so that the answer is not kept waiting by speech-to-text.

At the first silent chunk after speech the end-pointer hands the audio so far here, and
**speculative speech-to-text** of it starts on the STT stage's thread (unless STT is busy
with an earlier speculation). At a short pause (`listen.pause_seconds`, ~0.2 s) it hands it
again, and **the end-of-turn model** (Smart Turn, `audio.turn`) is asked on the listening
thread, while the transcript finishes (or starts, if the early one was skipped).

If the model says "finished" (its probability above 0.5 at the first ask; the bar halves
each time the pause doubles), the transcript is awaited (it is usually ready or nearly
so) and its last words are checked (`unfinished_ending`: "set a timer for" is not a
request). Finished on both counts: the turn ends at once and keeps that transcript.
Otherwise the turn goes on: the next pause asks again, and a pause of
`listen.max_pause_seconds` ends it. Speech that resumes throws the speculation away
before anything acts on it: a transcript here only ever decides *when* the turn ends,
never *what* it does; the handlers act on text only after the turn has ended. Before,
they may only *prepare* (`handlers.Prepares`): each speculative transcript is handed to
`prepare` as soon as it is made, and the understanding weighs it against its audio then,
beside the wait, so the request that ends on those words finds that done.

Both can be wrong ("could you tell me … a short joke" sounds finished at the pause). A
turn they ended is still taken back if the speaker goes on before it acted or spoke
(`Session._withdraw`, with `Endpointer.hear_more` and `reopen`).

If the model fails, the turn falls back to the fixed silence (`listen.silence_seconds`)
and so does every later one; an `end_of_turn_fallback` event says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from appliance import events as ev
from appliance.audio.turn import TurnDetector, unfinished_ending
from appliance.audio.vad import Endpointer, Paused, SpeechEnded

_LOGGER = logging.getLogger(__name__)

FINISHED = 0.5
"""The end-of-turn model's probability above which a first short pause ends the turn."""

RunOn = Callable[..., Awaitable]
Publish = Callable[..., None]


@dataclass
class Speculation:
    """Speech-to-text started at a pause, on the audio heard up to it."""

    last_speech: float
    task: asyncio.Task[str]
    started: float
    finished: float = 0.0


@dataclass
class SpeculationStats:
    used: int = 0
    """Turns whose transcript came from a pause's speculative STT."""
    discarded: int = 0
    """Speculations thrown away: speech resumed, or the turn was dropped."""
    saved_seconds: float = 0.0
    """STT time that had already run when the turn ended, summed over the used ones."""
    ready_before_end_seconds: float = 0.0
    """How long used transcripts lay finished before their turn ended, summed: the most
    that starting the language model speculatively at the pause could have saved."""


@dataclass(frozen=True)
class Transcribed:
    """A used speculation's result, for the turn that ended on it."""

    text: str
    stt_seconds: float
    saved_seconds: float


class TurnTaking:
    def __init__(
        self,
        detector: TurnDetector | None,
        *,
        judge_on: RunOn,
        transcribe_on: RunOn,
        transcribe: Callable[[np.ndarray], str],
        strip_wake_phrase: Callable[[str], str],
        publish: Publish,
        language: str = "en",
        unavailable: str = "",
        prepare: Callable[[str], None] | None = None,
    ) -> None:
        """`prepare`: given each speculative transcript as it is made, for work that may
        start before the request is known to be over (`handlers.Prepares`)."""
        self.detector = detector
        self._judge_on = judge_on
        self._transcribe_on = transcribe_on
        self._transcribe = transcribe
        self._strip = strip_wake_phrase
        self._publish = publish
        self._language = language
        self._unavailable = unavailable
        self._prepare = prepare
        self._warned = False
        self._speculation: Speculation | None = None
        self._asked_about = -1.0
        self._asks = 0
        self.stats = SpeculationStats()

    @property
    def asks_at_pauses(self) -> bool:
        return self.detector is not None

    def started(self) -> None:
        """Once per session: say so if the model was asked for and is not there."""
        if self.detector is None and self._unavailable and not self._warned:
            self._fall_back(self._unavailable)

    async def at_pause(self, endpointer: Endpointer, pause: Paused) -> SpeechEnded | None:
        """Judge a pause: the ended speech if the request is over, else None."""
        detector = self.detector
        if detector is None:
            endpointer.stop_asking()
            return None
        if not pause.ask:  # a first silent chunk: transcribe ahead if STT is free
            if self._speculation is None or self._speculation.task.done():
                self._speculate(pause)
            return None
        speculation = self._speculate(pause)
        try:
            verdict = await self._judge_on(detector.judge, pause.audio)
        except Exception as err:
            _LOGGER.exception("the end-of-turn model failed")
            self.detector = None
            endpointer.stop_asking()
            self._fall_back(f"the end-of-turn model failed: {err}")
            return None
        # The longer the silence, the less proof is needed: the model's bar halves each
        # time the pause doubles (0.5 at the first ask, 0.25 at the second, …). A voice
        # it is unsure of ("cancel the timer" at 0.49) then waits 0.5 s, not 2 s.
        asks = self._asks + 1 if pause.last_speech == self._asked_about else 1
        self._asked_about, self._asks = pause.last_speech, asks
        finished = verdict.probability > FINISHED / 2 ** (asks - 1)
        unfinished = ""
        if finished:
            heard = await _result(speculation.task)
            if heard is not None:
                unfinished = unfinished_ending(self._strip(heard), self._language)
        ends = finished and not unfinished
        self._publish(
            ev.EndOfTurn,
            stream_time=round(pause.time, 3),
            silence_seconds=round(pause.silence, 3),
            probability=round(verdict.probability, 3),
            unfinished=unfinished,
            decision="end" if ends else "wait",
        )
        return endpointer.end(pause.time) if ends else None

    async def take(self, ended: SpeechEnded) -> Transcribed | None:
        """The transcript a pause already made of this ended speech, if it still holds
        (no speech since) and succeeded; None: transcribe it as usual."""
        speculation, self._speculation = self._speculation, None
        if speculation is None:
            return None
        if speculation.last_speech != ended.last_speech:
            self._discard(speculation)
            return None
        waited_from = time.monotonic()
        heard = await _result(speculation.task)
        if heard is None:
            return None
        now = time.monotonic()
        finished = speculation.finished or now
        stt_seconds = finished - speculation.started
        saved = max(0.0, stt_seconds - (now - waited_from))
        self.stats.used += 1
        self.stats.saved_seconds += saved
        self.stats.ready_before_end_seconds += max(0.0, waited_from - finished)
        return Transcribed(heard, stt_seconds, saved)

    def drop(self) -> None:
        """The request was abandoned (muted, interrupted): forget what was started."""
        if self._speculation is not None:
            self._discard(self._speculation)
            self._speculation = None

    def _speculate(self, pause: Paused) -> Speculation:
        current = self._speculation
        if current is not None and current.last_speech == pause.last_speech:
            return current  # nothing new was said since: the same words
        if current is not None:
            self._discard(current)
        task = asyncio.ensure_future(self._transcribe_on(self._transcribe, pause.audio))
        speculation = Speculation(pause.last_speech, task, time.monotonic())
        task.add_done_callback(lambda _: self._made(speculation))
        self._speculation = speculation
        return speculation

    def _made(self, speculation: Speculation) -> None:
        speculation.finished = time.monotonic()
        task = speculation.task
        if self._prepare is None or self._speculation is not speculation or task.cancelled():
            return
        if task.exception() is None and task.result():
            self._prepare(task.result())

    def _discard(self, speculation: Speculation) -> None:
        self.stats.discarded += 1
        # STT in its thread cannot be stopped; its result is simply never read.
        speculation.task.add_done_callback(_consume)

    def _fall_back(self, why: str) -> None:
        self._warned = True
        _LOGGER.warning("end of turn: %s; ending requests after a fixed silence", why)
        self._publish(ev.EndOfTurnFallback, message=why)


async def _result(task: asyncio.Task[str]) -> str | None:
    """The speculation's transcript, or None when its STT failed (the turn then
    transcribes again and reports the error itself)."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        raise
    except Exception:
        return None


def _consume(task: asyncio.Future[str]) -> None:
    with contextlib.suppress(BaseException):
        task.exception()
