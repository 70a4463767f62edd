"""Speaking: a turn's reply streamed sentence by sentence, and announcements.

The LLM writes tokens on its stage's thread; the sentence splitter cuts them; each
finished sentence is synthesised on the TTS thread and queued to the sink while the
model is still writing the next one. A handler's reply takes the same road, whole.

`Speaker.active` is the reply (or announcement) an interruption reaches: its LLM's
cancel flag, where its audio began on the sink's play counter, and what it said so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from appliance import events as ev
from appliance.audio.earcons import earcon
from appliance.audio.sinks import AudioSink
from appliance.errors import (
    AudioOutputError,
    LanguageModelError,
    PipelineError,
    TextToSpeechError,
)
from appliance.handlers import Handled
from appliance.pipeline.barge_in import heard_text
from appliance.pipeline.conversation import Conversation
from appliance.pipeline.sentences import SentenceSplitter
from appliance.pipeline.stages import Stage, StageThreads
from appliance.pipeline.types import Engines, PipelineSettings, State, TurnResult
from appliance.understanding.claims import find_claim, truthful_reply

_LOGGER = logging.getLogger(__name__)

Publish = Callable[..., None]


@dataclass
class ReplyControl:
    """What an interrupt needs to reach a running reply: its LLM's cancel flag, where its
    audio started on the sink's play counter, and the sentences queued so far."""

    turn: int
    cancel: threading.Event = field(default_factory=threading.Event)
    played_at_start: float | None = None
    sentences: list[tuple[str, float]] = field(default_factory=list)
    interrupted_by: str = ""

    def heard(self, played_now: float) -> str:
        if self.played_at_start is None:
            return ""
        return heard_text(self.sentences, played_now - self.played_at_start)

    def said_lately(self, played_now: float, word: str, seconds: float = 1.5) -> bool:
        """Whether a sentence played in the last `seconds` contains `word`: the wake
        detector reacts up to about a second after the word, and the room adds echo."""
        if self.played_at_start is None or not word:
            return False
        now = played_now - self.played_at_start
        pattern = re.compile(rf"\b{re.escape(word)}\b", re.I)
        start = 0.0
        for sentence, length in self.sentences:
            if start > now:
                break
            if start + length >= now - seconds and pattern.search(sentence):
                return True
            start += length
        return False


class Speaker:
    """Speaks replies and announcements, one at a time (`voice`)."""

    def __init__(
        self,
        engines: Engines,
        sink: AudioSink,
        stages: StageThreads,
        settings: PipelineSettings,
        conversation: Conversation,
        publish: Publish,
        set_state: Callable[[State], None],
    ) -> None:
        self.engines = engines
        self.sink = sink
        self.stages = stages
        self.settings = settings
        self.conversation = conversation
        self._publish = publish
        self._set_state = set_state
        self.active: ReplyControl | None = None
        """The reply or announcement an interruption would stop now."""
        self.voice = asyncio.Lock()
        self.announcing = 0

    async def reply(
        self, result: TurnResult, text: str, speech_end: float, handled: Handled | None
    ) -> None:
        """Stream the reply into TTS sentence by sentence: the LLM's tokens as they come,
        or a handler's answer."""
        control = ReplyControl(result.turn)
        self.active = control
        run = _ReplyRun(self, result, control, text, speech_end, handled)
        try:
            await run.stream()
        finally:
            if self.active is control:
                self.active = None
        await self._finish(run)

    async def _finish(self, run: _ReplyRun) -> None:
        result, control, text = run.result, run.control, run.text
        remember = self.settings.conversation.history_tokens > 0
        result.reply = " ".join(result.reply.split())
        if result.false_claims_replaced:
            result.reply = " ".join(result.sentences)  # only what is spoken
        if not control.interrupted_by and not result.sentences:
            if run.handled is None:
                raise LanguageModelError("the language model returned an empty reply")
            if remember:
                self.conversation.add(text, "")
            return  # a handler that had nothing to say (e.g. "stop")
        if not control.interrupted_by:
            self.active = control  # still interruptible while the last audio plays
            await self.sink.drain()
            self.active = None
        if control.interrupted_by:
            result.outcome = "interrupted"
            if remember:  # only what the user heard
                self.conversation.add(text, control.heard(self.sink.played_seconds()))
            return
        if remember:
            self.conversation.add(text, result.reply)
        self._publish(
            ev.Reply,
            turn=result.turn,
            text=result.reply,
            audio_seconds=round(result.reply_audio_seconds, 3),
        )

    async def announce(
        self, text: str, turn: int, *, cue: str | None = None, shown: str | None = None
    ) -> None:
        """Speak an announcement after whatever is playing (see `Pipeline.say`)."""
        rate = self.engines.tts.sample_rate
        async with self._out_of_turn(turn, text if shown is None else shown) as control:
            if cue is not None:
                with contextlib.suppress(Exception):
                    await self.sink.play(earcon(cue, rate), rate)
            splitter = SentenceSplitter()
            for sentence in [*splitter.feed(text), *splitter.flush()]:
                if control.interrupted_by:
                    break
                audio = await self._synthesize(sentence)
                if control.interrupted_by:
                    break
                await self._play_interruptibly(control, sentence, audio, rate)

    async def play_clips(
        self,
        clips: Sequence[tuple[np.ndarray, int]],
        turn: int,
        *,
        shown: str,
        as_reply: bool = False,
    ) -> bool:
        """Play recorded audio (an announcement Home Assistant sent, or its reply with
        `as_reply`), after whatever is playing and interruptible like a reply. False
        when interrupted."""
        async with self._out_of_turn(turn, None if as_reply else shown) as control:
            for samples, rate in clips:
                if control.interrupted_by:
                    break
                await self._play_interruptibly(control, shown, samples, rate)
        if as_reply and not control.interrupted_by:
            seconds = sum(len(samples) / rate for samples, rate in clips)
            self._publish(ev.Reply, turn=turn, text=shown, audio_seconds=round(seconds, 3))
        return not control.interrupted_by

    @contextlib.asynccontextmanager
    async def _out_of_turn(self, turn: int, announced: str | None) -> AsyncIterator[ReplyControl]:
        """Speaking that is no reply of the pipeline's (announcements, what Home
        Assistant sends): after whatever is playing, interruptible like a reply, and
        drained at the end unless interrupted. `announced`: the `announcement` event's
        text, published once it is this one's turn to speak."""
        async with self.voice:
            self.announcing += 1
            control = ReplyControl(turn)
            self.active = control
            if announced is not None:
                self._publish(ev.Announcement, text=announced)
            self._set_state(State.SPEAKING)
            try:
                yield control
                if not control.interrupted_by:
                    await self.sink.drain()
            finally:
                self.announcing -= 1
                if self.active is control:
                    self.active = None

    async def _play_interruptibly(
        self, control: ReplyControl, said: str, samples: np.ndarray, rate: int
    ) -> None:
        if control.played_at_start is None:
            control.played_at_start = self.sink.played_seconds()
        control.sentences.append((said, len(samples) / rate))
        await self.sink.play(samples, rate)

    async def _synthesize(self, sentence: str) -> np.ndarray:
        try:
            return await self.stages[Stage.TTS].run(self.engines.tts.synthesize, sentence)
        except PipelineError:
            raise
        except Exception as err:
            raise TextToSpeechError(f"text-to-speech failed: {err}") from err


class _ReplyRun:
    """One reply on its way: the LLM's (or a handler's) text → sentences → audio."""

    def __init__(
        self,
        speaker: Speaker,
        result: TurnResult,
        control: ReplyControl,
        text: str,
        speech_end: float,
        handled: Handled | None,
    ) -> None:
        self.speaker = speaker
        self.result = result
        self.control = control
        self.text = text
        self.speech_end = speech_end
        self.handled = handled
        self.pieces: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        self.sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self.asked = time.monotonic()
        self.llm_done: asyncio.Future[None] | None = None
        self.may_write = threading.Event()
        """Cleared while a sentence is synthesised: a model on the CPU (llama.cpp) then
        waits between tokens, and Piper has every core (see `_speak`)."""
        self.may_write.set()

    async def stream(self) -> None:
        speaker, result, cancel = self.speaker, self.result, self.control.cancel
        settings = speaker.settings
        messages = speaker.conversation.messages(settings.system_prompt, self.text)
        loop = asyncio.get_running_loop()

        def generate() -> None:
            try:
                handled = self.handled
                stream = (
                    [handled.reply] if handled else speaker.engines.llm.stream(messages, cancel)
                )
                for piece in stream:
                    loop.call_soon_threadsafe(self.pieces.put_nowait, piece)
                    self._wait_while_speaking(cancel)
            except BaseException as err:  # handed to the event loop, raised there
                loop.call_soon_threadsafe(self.pieces.put_nowait, err)
            finally:
                loop.call_soon_threadsafe(self.pieces.put_nowait, None)

        self.llm_done = speaker.stages[Stage.LLM].submit(generate)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._read_tokens(), name=f"turn-{result.turn}-llm")
                group.create_task(self._speak(), name=f"turn-{result.turn}-tts")
        except BaseExceptionGroup as group_error:
            cancel.set()
            raise first_pipeline_error(group_error) from None
        finally:
            cancel.set()
            self.may_write.set()
            await self.llm_done

    def _wait_while_speaking(self, cancel: threading.Event) -> None:
        """On the LLM's thread, between tokens: wait while TTS has the cores."""
        while not self.may_write.wait(0.05):
            if cancel.is_set():
                return

    def _say(self, sentence: str) -> bool:
        """Queue a sentence; a claim of an action in the LLM's free text (no action ran:
        no handler took the request) is replaced by the truth and ends the reply. False
        once it has."""
        result = self.result
        claim = None if self.handled is not None else find_claim(sentence)
        if claim is None:
            self._queue(sentence)
            return True
        self.control.cancel.set()
        truth = truthful_reply(claim)
        _LOGGER.warning(
            "turn %d: the language model claimed an action that did not run (%s %r): "
            "%r; said instead: %r",
            result.turn, claim.kind, claim.words, sentence, truth,
        )  # fmt: skip
        result.false_claims_replaced += 1
        self._queue(truth)
        return False

    def _queue(self, sentence: str) -> None:
        result = self.result
        if not result.sentences:
            result.timings["llm_first_sentence"] = time.monotonic() - self.asked
        result.sentences.append(sentence)
        self.speaker._publish(
            ev.ReplySentence, turn=result.turn, index=len(result.sentences) - 1, text=sentence
        )
        self.sentences.put_nowait(sentence)

    async def _read_tokens(self) -> None:
        result = self.result
        # A handler's answer is whole and short: only the model's text is cut early.
        clause = self.speaker.settings.first_clause_chars if self.handled is None else 0
        splitter = SentenceSplitter(first_clause_chars=clause)
        try:
            while (piece := await self.pieces.get()) is not None:
                if isinstance(piece, BaseException):
                    if isinstance(piece, PipelineError):
                        raise piece
                    raise LanguageModelError(f"language model failed: {piece}") from piece
                if "llm_first_token" not in result.timings and self.handled is None:
                    self._first_token()
                result.reply += piece
                if not all(self._say(sentence) for sentence in splitter.feed(piece)):
                    break
            else:
                for sentence in splitter.flush():
                    if not self._say(sentence):
                        break
            result.timings["llm_total"] = time.monotonic() - self.asked
        finally:
            self.sentences.put_nowait(None)

    def _first_token(self) -> None:
        result = self.result
        result.timings["llm_first_token"] = time.monotonic() - self.asked
        self.speaker._publish(
            ev.LlmFirstToken,
            turn=result.turn,
            seconds_after_transcript=round(result.timings["llm_first_token"], 3),
        )

    async def _speak(self) -> None:
        speaker, control, result = self.speaker, self.control, self.result
        # Piper and llama.cpp take turns, each with every core: the model waits between
        # tokens while a sentence is synthesised. Both running at once on shared cores
        # made the first sentence's audio later, which is what the listener waits for.
        takes_turns = speaker.engines.llm.runs_on_cpu
        while (sentence := await self.sentences.get()) is not None:
            if control.interrupted_by:
                break
            started = time.monotonic()
            if takes_turns:
                self.may_write.clear()
            try:
                audio = await speaker._synthesize(sentence)
            finally:
                self.may_write.set()
            if "tts_first_sentence" not in result.timings:
                result.timings["tts_first_sentence"] = time.monotonic() - started
            if control.interrupted_by:
                break
            await self._play(sentence, audio)

    async def _play(self, sentence: str, audio: np.ndarray) -> None:
        speaker, control, result = self.speaker, self.control, self.result
        if len(audio) == 0:
            return
        rate = speaker.engines.tts.sample_rate
        if control.played_at_start is None:
            control.played_at_start = speaker.sink.played_seconds()
        control.sentences.append((sentence, len(audio) / rate))
        result.committed = True
        if result.reply_audio is not None:
            result.reply_audio.append(audio)
            result.reply_rate = rate
        if result.reply_audio_seconds == 0.0:
            result.timings["ttfa"] = time.monotonic() - self.speech_end
            speaker._set_state(State.SPEAKING)
            speaker._publish(
                ev.TtsFirstAudio,
                turn=result.turn,
                seconds_after_speech_end=round(result.timings["ttfa"], 3),
            )
        try:
            await speaker.sink.play(audio, rate)
        except PipelineError:
            raise
        except Exception as err:
            raise AudioOutputError(f"audio output failed: {err}") from err
        result.reply_audio_seconds += len(audio) / rate


def first_pipeline_error(group_error: BaseExceptionGroup) -> PipelineError:
    for error in group_error.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return first_pipeline_error(error)
        if isinstance(error, PipelineError):
            return error
        if isinstance(error, asyncio.CancelledError):
            raise error
        return PipelineError(f"unexpected error: {error}")
    return PipelineError("unknown error")
