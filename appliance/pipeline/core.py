"""One spoken turn after another: audio → wake word → end-pointing → STT → LLM → TTS → sink.

The audio loop only moves chunks and hands every blocking model call to a worker thread
(one single-thread executor per stage, so calls into one engine never overlap). A turn
runs as its own task: the LLM writes tokens in its thread, the sentence splitter cuts
them, and each finished sentence is synthesised and queued to the sink while the model
is still writing the next one.

Engines arrive through the constructor (`Engines`), so tests pass fakes and nothing is
patched. Progress is published as typed events on an `EventBus`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from appliance import events as ev
from appliance.audio.aec import CaptureTimeline, EchoCanceller, NoEchoCanceller
from appliance.audio.format import int16_to_float
from appliance.audio.sinks import AudioSink
from appliance.audio.sources import AudioSource
from appliance.audio.vad import (
    SpeechEnded,
)
from appliance.errors import (
    PipelineError,
    SpeechToTextError,
)
from appliance.handlers import TextHandler, forget_pending, prepare
from appliance.pipeline.arbitration import WakeArbiter
from appliance.pipeline.barge_in import (
    BargeIn,
    is_stop_phrase,
)
from appliance.pipeline.conversation import Conversation
from appliance.pipeline.endofturn import Transcribed, TurnTaking
from appliance.pipeline.remote import RemoteAssistant
from appliance.pipeline.reply import Speaker
from appliance.pipeline.session import Session
from appliance.pipeline.stages import Stage, StageThreads
from appliance.pipeline.turn import TurnRunner
from appliance.pipeline.types import (
    Engines,
    Listening,
    PipelineSettings,
    State,
    TurnResult,
)
from appliance.pipeline.wake_phrase import WakePhrase
from appliance.stt.base import PhraseScorer, Relistener

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


class Pipeline:
    def __init__(
        self,
        engines: Engines,
        sink: AudioSink,
        bus: ev.EventBus,
        settings: PipelineSettings | None = None,
        *,
        echo: EchoCanceller | None = None,
        handlers: Sequence[TextHandler] = (),
        stages: StageThreads | None = None,
        first_turn: int = 1,
    ) -> None:
        """`stages`: another pipeline's stage threads to share (its engines must never be
        called from two threads); that pipeline closes them. `first_turn`: the number of
        this pipeline's first turn."""
        self.engines = engines
        self._echo = echo or NoEchoCanceller()
        self._sink = sink
        self.bus = bus
        self._settings = settings or PipelineSettings()
        self._owns_stages = stages is None
        self._stages = stages or StageThreads()
        self._turn = first_turn - 1
        self._stream_time = 0.0
        self._state: State | None = None
        self._wake = WakePhrase(self.settings.wake_phrase)
        self._unstripped = ("", "")
        """The last transcript as the handlers got it, and as whisper wrote it (with the
        wake phrase): sentences are scored against whisper's (`phrase_scorer`)."""
        self.results: list[TurnResult] = []
        self._capture_timeline = CaptureTimeline()
        self.conversation = Conversation(
            max_tokens=self.settings.conversation.history_tokens,
            idle_seconds=self.settings.conversation.history_idle_seconds,
        )
        self.speaker = Speaker(
            engines, sink, self._stages, self._settings, self.conversation,
            self._publish, self._set_state,
        )  # fmt: skip
        self.barge_in = BargeIn(
            self.speaker, engines, self._stages, self._echo, self._settings, self._publish
        )
        self.handlers: list[TextHandler] = list(handlers)
        """Tried in order on every request before the LLM (see `appliance.handlers`)."""
        self.turns = TurnRunner(self.speaker, self.handlers, self._publish, self._set_state)
        self.remote: RemoteAssistant | None = None
        """Another assistant that answers spoken requests when it takes them (Home
        Assistant's pipeline, `satellite.mode = "home_assistant"`); None: all here."""
        self.arbiter: WakeArbiter | None = None
        """Other rooms' boxes that may hear the same wake word (appliance/rooms)."""
        self._muted = False
        self._live = False  # a live source's run loop is running (push-to-talk possible)
        self._listen_request = ""
        self._window_after = ""  # the reply that opened the follow-up window
        self._spoken: TurnResult | None = None  # the last spoken turn begun
        self.stt_prompt: str = ""
        """Words whisper should expect (device names, …), passed as its prompt; "" = none."""
        self.turn_taking = TurnTaking(
            engines.turn,
            judge_on=self._stages[Stage.LISTEN].run,
            transcribe_on=self._stages[Stage.STT].run,
            transcribe=self._transcribe,
            strip_wake_phrase=self._strip_wake_phrase,
            publish=self._publish,
            language=self.settings.conversation.language,
            unavailable=engines.turn_unavailable,
            prepare=self._prepare,
        )
        self.preparing: set[asyncio.Task[None]] = set()
        """Handlers preparing a pause's transcript (`handlers.Prepares`)."""

    @property
    def settings(self) -> PipelineSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: PipelineSettings) -> None:
        """New settings (the config page's live changes) reach the next turn."""
        self._settings = self.speaker.settings = self.barge_in.settings = settings

    @property
    def echo(self) -> EchoCanceller:
        return self._echo

    @echo.setter
    def echo(self, echo: EchoCanceller) -> None:
        self._echo = self.barge_in.echo = echo

    @property
    def sink(self) -> AudioSink:
        return self._sink

    @sink.setter
    def sink(self, sink: AudioSink) -> None:
        self._sink = self.speaker.sink = sink

    # ---- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_stages:
            self._stages.shutdown()

    def phrase_scorer(self) -> Callable[[str, Sequence[str]], list[float] | None] | None:
        """The STT engine's sentence scoring (`PhraseScorer.score`), run on the STT stage's
        thread as its transcriptions are; None when the engine cannot score. A transcript
        the wake phrase was taken from is scored as whisper wrote it, each sentence with
        the wake phrase around it as it was."""
        stt, stage = self.engines.stt, self._stages[Stage.STT]
        if not isinstance(stt, PhraseScorer):
            return None

        def score(heard: str, texts: Sequence[str]) -> list[float] | None:
            written, before, after = self._as_written(heard)
            return stage.call(stt.score, written, [f"{before}{t}{after}" for t in texts])

        return score

    def relistener(self) -> Callable[[str, str], str | None] | None:
        """The STT engine's second listen with a prompt (`Relistener.relisten`), on the STT
        stage's thread, its transcript without the wake phrase; None when the engine
        cannot."""
        stt, stage = self.engines.stt, self._stages[Stage.STT]
        if not isinstance(stt, Relistener):
            return None

        def relisten(heard: str, prompt: str) -> str | None:
            again = stage.call(stt.relisten, self._as_written(heard)[0], prompt)
            if not again:
                return again
            text = self._strip_wake_phrase(again)
            self._unstripped = (text, again)
            return text

        return relisten

    def _as_written(self, text: str) -> tuple[str, str, str]:
        """`text` (a transcript the handlers were given) as whisper wrote it, and what
        stood before and after it there (the wake phrase the pipeline took off)."""
        given, written = self._unstripped
        at = written.find(given) if text == given and given != written else -1
        if at < 0:
            return text, "", ""
        return written, written[:at], written[at + len(given) :]

    async def in_stage(self, stage: Stage | str, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call on one stage's thread (listen, stt, llm, tts), exactly as
        the pipeline itself calls that engine. Used by the benchmark."""
        return await self._stages[stage].run(fn, *args)

    # ---- events ----------------------------------------------------------------------

    def _publish(self, event_type: type[ev.Event], **fields: Any) -> None:
        fields.setdefault("turn", self._turn)
        fields.setdefault("stream_time", round(self._stream_time, 3))
        self.bus.publish(event_type(**fields))

    def _set_state(self, state: State) -> None:
        if state != self._state:
            self._state = state
            self._publish(ev.StateChanged, state=state)

    def _set_idle(self) -> None:
        self._set_state(State.MUTED if self._muted else State.IDLE)

    @property
    def state(self) -> str:
        """The `State` now ("" before the first run)."""
        return self._state or ""

    # ---- control from outside (buttons, MQTT, the web page) ----------------------------

    @property
    def muted(self) -> bool:
        return self._muted

    def set_muted(self, muted: bool, *, by: str) -> None:
        """Mute: the microphone's audio is dropped (no wake word, no follow-ups, no
        barge-in) until unmuted. A reply already playing finishes."""
        if muted == self._muted:
            return
        self._muted = muted
        self._listen_request = ""
        self._publish(ev.Muted, muted=muted, by=by)
        if muted or self._state == State.MUTED:
            self._set_idle()

    def listen_now(self, *, by: str) -> bool:
        """Push-to-talk: capture a request as if the wake word was heard, interrupting a
        reply that is playing. False when muted or when no live source is being listened
        to (a file run, or no `run` at all)."""
        if self._muted or not self._live:
            return False
        self._listen_request = by
        return True

    async def play(self, clips: Sequence[tuple[np.ndarray, int]], *, shown: str) -> bool:
        """Play recorded audio (int16 mono, each clip at its rate) as an announcement;
        `shown` is what the `announcement` event carries. False when interrupted."""
        try:
            return await self.speaker.play_clips(clips, self._turn, shown=shown)
        finally:
            if self._state == State.SPEAKING:
                self._set_idle()

    async def say(self, text: str, *, cue: str | None = None, shown: str | None = None) -> None:
        """Speak an announcement (a timer that ended, a "say" command) after whatever is
        playing. The wake word or "stop" interrupts it like a reply. `shown` is what the
        `announcement` event carries instead of `text`, for a secret said aloud only
        (the pairing code): events reach files, MQTT and the config page."""
        text = " ".join(text.split())
        if not text:
            return
        try:
            await self.speaker.announce(text, self._turn, cue=cue, shown=shown)
        finally:
            if self._state == State.SPEAKING:
                self._set_idle()

    # ---- the audio loop --------------------------------------------------------------

    async def run(self, source: AudioSource) -> list[TurnResult]:
        """Listen to a source until it ends; answer every request heard in it.
        Returns the turns of this run (`results` keeps every turn of the session).

        File sources read as fast as possible wait while a turn is answered. Live sources
        (a microphone, a file in real time) keep flowing: while the appliance speaks,
        their audio is checked for the wake word and for "stop" (barge-in). The loop is
        `session.Session`."""
        first_result = len(self.results)
        await Session(self, source).run()
        return self.results[first_result:]

    def _transcribe(self, audio: np.ndarray) -> str:
        """Speech-to-text of int16 request audio (on the STT stage's thread)."""
        stt = self._listening().stt
        if self.stt_prompt:
            return stt.transcribe(int16_to_float(audio), prompt=self.stt_prompt)
        return stt.transcribe(int16_to_float(audio))

    def interrupt(self, by: str, *, detected_at: float | None = None) -> bool:
        """Stop the reply being spoken, now (`BargeIn.interrupt`); False when nothing is
        playing."""
        return self.barge_in.interrupt(by, detected_at=detected_at)

    def _listening(self) -> Listening:
        wake, vad, stt = self.engines.wake, self.engines.vad, self.engines.stt
        if wake is None or vad is None or stt is None:
            raise PipelineError("listening needs the wake word, VAD and STT engines loaded")
        return Listening(wake, vad, stt)

    # ---- one turn --------------------------------------------------------------------

    async def _heard(self, speech: SpeechEnded, result: TurnResult) -> str:
        """The request's transcript: the one a pause already made of this audio
        (`endofturn`), else transcribed now."""
        ready: Transcribed | None = await self.turn_taking.take(speech)
        if ready is not None:
            result.timings["stt"] = ready.stt_seconds
            result.timings["stt_saved"] = ready.saved_seconds
            return ready.text
        started = time.monotonic()
        try:
            heard = await self._stages[Stage.STT].run(self._transcribe, speech.audio)
        except PipelineError:
            raise
        except Exception as err:
            raise SpeechToTextError(f"speech-to-text failed: {err}") from err
        result.timings["stt"] = time.monotonic() - started
        return heard

    async def _spoken_turn(
        self,
        result: TurnResult,
        speech: SpeechEnded,
        speech_end: float,
        answering: str | None = None,
    ) -> TurnResult:
        """One spoken request. `answering` is the reply that opened the follow-up window
        this was heard in (None: the wake word or the button began the turn)."""
        self.results.append(result)
        self._set_state(State.THINKING)
        await self.turns.cue("done")  # "I heard you, now thinking"

        async def body() -> None:
            heard = await self._heard(speech, result)
            text = self._strip_wake_phrase(heard)
            self._unstripped = (text, heard)
            window_reply = answering
            if window_reply is not None and self._wake.begins(heard):
                # The wake phrase inside the window: a new request, not an answer.
                window_reply = None
                await forget_pending(self.handlers)
            result.transcript = text
            stt_seconds = round(result.timings["stt"], 3)
            self._publish(ev.Transcript, turn=result.turn, text=text, stt_seconds=stt_seconds)
            if not text:
                result.outcome = "empty_transcript"
            elif is_stop_phrase(text, self.settings.stop_phrases):
                result.outcome = "stopped"  # "hey jarvis, stop" with nothing playing
            else:
                await self.turns.respond(result, text, speech_end, window_reply)

        return await self.turns.run(result, speech_end, body)

    async def ask(self, text: str, *, keep_audio: bool = False) -> TurnResult:
        """A typed request: skips the wake word and STT. `keep_audio`: the result keeps
        the reply's audio as played (`TurnResult.reply_audio`)."""
        self._turn += 1
        result = TurnResult(self._turn, transcript=text, reply_audio=[] if keep_audio else None)
        self.results.append(result)
        # Typed requests are turns like spoken ones (the status page, MQTT, event files).
        self._publish(ev.Transcript, turn=result.turn, text=text, stt_seconds=0.0)
        self._set_state(State.THINKING)
        started = time.monotonic()
        await self.turns.run(result, started, lambda: self.turns.respond(result, text, started))
        self._set_idle()
        return result

    async def run_recording(self, source: AudioSource, sink: AudioSink) -> list[TurnResult]:
        """Answer a recording (the config page's WAV upload) into its own sink, on this
        pipeline's engines, stage threads (so no engine is called from a second thread),
        bus and settings, while a live loop keeps its own state. Turn numbers continue
        this pipeline's."""
        other = Pipeline(
            self.engines, sink, self.bus, self.settings,
            handlers=self.handlers, stages=self._stages, first_turn=self._turn + 1,
        )  # fmt: skip
        other.stt_prompt = self.stt_prompt
        try:
            return await other.run(source)
        finally:
            self._turn = max(self._turn, other._turn)

    def _prepare(self, heard: str) -> None:
        """A pause's speculative transcript: the handlers may prepare for it (never act)."""
        text = self._strip_wake_phrase(heard)
        if not text or is_stop_phrase(text, self.settings.stop_phrases):
            return
        # Scoring maps the handlers' text back to whisper's (`_as_written`): the turn
        # that ends on these words sets the same pair again.
        self._unstripped = (text, heard)
        task = asyncio.create_task(prepare(self.handlers, text))
        self.preparing.add(task)
        task.add_done_callback(self.preparing.discard)

    def _strip_wake_phrase(self, text: str) -> str:
        if self._wake.phrase != self.settings.wake_phrase:  # changed on the page
            self._wake = WakePhrase(self.settings.wake_phrase)
        return self._wake.strip(text)
