"""Interrupting the appliance while it speaks: recognising "stop", telling the user's
voice from the appliance's own, and working out what was heard before the cut.

`BargeIn` listens while a reply is produced or spoken: the echo canceller takes the
appliance's own voice out of the microphone, then the wake word (at a threshold that
depends on how much of the voice was left, `barge_in_threshold`), the "stop" keyword
head, or a short burst that speech-to-text hears as a stop phrase interrupts the reply.
The pure pieces below it are tested without any model.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance import events as ev
from appliance.audio.aec import EchoCanceller
from appliance.audio.format import PIPELINE_RATE, AudioChunk, int16_to_float
from appliance.audio.vad import PreRoll
from appliance.pipeline.stages import Stage, StageThreads
from appliance.wake.base import Detection

if TYPE_CHECKING:
    from appliance.pipeline.reply import ReplyControl, Speaker
    from appliance.pipeline.types import Engines, Listening, PipelineSettings

_LOGGER = logging.getLogger(__name__)

KEPT_WINDOW = 10
"""Chunks (0.8 s) over which the double-talk gate weighs what the canceller kept: the
stop keyword's window."""

STOP_PHRASES = ("stop", "cancel", "be quiet", "shut up", "never mind", "nevermind",
                "that's enough", "stop talking")  # fmt: skip


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def is_stop_phrase(text: str, phrases: tuple[str, ...] = STOP_PHRASES) -> bool:
    """A short utterance that is only a stop phrase (politeness allowed): "stop",
    "okay stop please", "Jarvis, be quiet". A sentence that merely contains "stop"
    ("how do I stop a leak") is a request, not a stop."""
    words = _words(text)
    if not words or len(words) > 5:
        return False
    filler = {"please", "ok", "okay", "hey", "jarvis", "now", "it", "just", "oh", "so"}
    joined = " ".join(w for w in words if w not in filler)
    return joined in phrases


def stop_over_echo(text: str, spoken: str, phrases: tuple[str, ...] = STOP_PHRASES) -> bool:
    """Heard while speaking: a stop phrase in a short burst, or one with the appliance's
    own words leaking through around it ("Stop. The moon is…"). The recogniser often adds
    a word or two of the echo, so a burst of up to four words with a stop phrase counts."""
    if is_stop_phrase(text, phrases):
        return True
    words = _words(text)
    said = set(_words(spoken))
    for size in (1, 2, 3):
        for at in range(0, len(words) - size + 1):
            if " ".join(words[at : at + size]) in phrases:
                rest = words[:at] + words[at + size :]
                if len(words) <= 4 or sum(w in said for w in rest) / len(rest) >= 0.6:
                    return True
    return False


def echoes(text: str, spoken: str) -> bool:
    """Is this transcript just the appliance's own voice heard back? (most of its words
    are words of what it is saying)"""
    heard = _words(text)
    if not heard:
        return True
    said = set(_words(spoken))
    return sum(w in said for w in heard) / len(heard) >= 0.6


def heard_text(sentences: list[tuple[str, float]], played: float) -> str:
    """The part of a reply that was played: whole sentences, then the played share of the
    sentence that was cut, by its words, marked with an ellipsis."""
    out: list[str] = []
    elapsed = 0.0
    for sentence, seconds in sentences:
        if elapsed + seconds <= played + 1e-6:
            out.append(sentence)
            elapsed += seconds
            continue
        share = max(0.0, (played - elapsed) / seconds) if seconds > 0 else 0.0
        words = sentence.split()
        kept = words[: int(len(words) * share)]
        if kept:
            out.append(" ".join(kept) + " …")
        break
    return " ".join(out)


DOUBLE_TALK_KEPT_DB = -6.0
"""With echo cancellation, speech heard while the appliance talks counts as the user's
only if the canceller kept at least this much of the microphone's energy."""


class KeptEnergy:
    """How much of the microphone's energy the echo canceller kept over the last
    `chunks` chunks, in dB: its own voice, which the canceller predicts, loses 10 dB or
    more; a voice in the room it cannot predict loses almost nothing."""

    def __init__(self, chunks: int = 10) -> None:
        self._mic: deque[float] = deque(maxlen=chunks)
        self._kept: deque[float] = deque(maxlen=chunks)

    def add(self, mic: np.ndarray, kept: np.ndarray) -> None:
        self._mic.append(float(np.sum(mic.astype(np.float64) ** 2)))
        self._kept.append(float(np.sum(kept.astype(np.float64) ** 2)))

    def db(self) -> float:
        mic = sum(self._mic)
        if mic <= 0:
            return 0.0
        return float(10 * np.log10(max(sum(self._kept), 1e-9) / mic))

    def someone_else(self) -> bool:
        """The double-talk gate: a voice the canceller could not predict is in there."""
        return self.db() >= DOUBLE_TALK_KEPT_DB

    def reset(self) -> None:
        self._mic.clear()
        self._kept.clear()


NO_AEC_BARGE_IN_THRESHOLD = 0.85
"""Wake score needed over a reply without echo cancellation: its own voice reaches the
detector whole."""


def barge_in_threshold(
    echo_active: bool, kept: KeptEnergy, configured: float | None, detector: float
) -> float | None:
    """The wake score that interrupts a reply (None: the detector's own threshold).

    With echo cancellation, a detection counts only while the double-talk gate is open:
    what is left of its own "Jarvis" after the canceller (a cold one removes only 4–14 dB)
    can still score 0.99. A closed gate withholds the detection (an unreachable
    threshold) rather than discarding it, so that the detector's cool-down does not
    swallow the user's wake word a moment later."""
    if not echo_active:
        return configured or max(NO_AEC_BARGE_IN_THRESHOLD, detector)
    return configured if kept.someone_else() else math.inf


@dataclass
class StopListener:
    """Collects short bursts of speech heard while the appliance talks, for the STT to
    check against the stop phrases: a burst ends after `gap` of silence or at `longest`."""

    threshold: float = 0.5
    min_speech: float = 0.24
    gap: float = 0.32
    longest: float = 1.6
    lead_chunks: int = 2
    """Chunks kept from before the first voiced one: the "s" of "stop" is quiet."""
    min_kept_db: float | None = None
    """With echo cancellation: a burst counts only if the canceller kept at least this
    much of the microphone's energy (dB). Echo it recognised loses 10 dB or more; a voice
    in the room it cannot predict loses almost nothing (double-talk detection)."""
    _chunks: list[np.ndarray] = field(default_factory=list)
    _lead: list[np.ndarray] = field(default_factory=list)
    _speech: float = 0.0
    _silence: float = 0.0
    _mic_energy: float = 0.0
    _kept_energy: float = 0.0

    def feed(
        self, chunk: AudioChunk, probability: float, mic: np.ndarray | None = None
    ) -> np.ndarray | None:
        """`chunk` is the echo-cancelled audio; `mic` what the microphone gave."""
        voiced = probability >= self.threshold
        if voiced and mic is not None:
            self._mic_energy += float(np.sum(mic.astype(np.float64) ** 2))
            self._kept_energy += float(np.sum(chunk.samples.astype(np.float64) ** 2))
        if not self._chunks and not voiced:
            self._lead = [*self._lead, chunk.samples][-self.lead_chunks :]
            return None
        if not self._chunks:
            self._chunks = list(self._lead)
            self._lead = []
        self._chunks.append(chunk.samples)
        if voiced:
            self._speech += chunk.duration
            self._silence = 0.0
        else:
            self._silence += chunk.duration
        total = len(self._chunks) * chunk.duration
        if self._silence >= self.gap or total >= self.longest + self.lead_chunks * chunk.duration:
            burst = np.concatenate(self._chunks)
            enough = self._speech >= self.min_speech and self._new_voice()
            self.reset()
            return burst if enough else None
        return None

    def _new_voice(self) -> bool:
        if self.min_kept_db is None or self._mic_energy <= 0:
            return True
        kept_db = 10 * np.log10(max(self._kept_energy, 1e-9) / self._mic_energy)
        return bool(kept_db >= self.min_kept_db)

    def reset(self) -> None:
        self._chunks = []
        self._lead = []
        self._mic_energy = 0.0
        self._kept_energy = 0.0
        self._speech = 0.0
        self._silence = 0.0


class BargeIn:
    """Listening while the appliance speaks; `interrupt` stops what it says."""

    def __init__(
        self,
        speaker: Speaker,
        engines: Engines,
        stages: StageThreads,
        echo: EchoCanceller,
        settings: PipelineSettings,
        publish: Any,
    ) -> None:
        self.speaker = speaker
        self.engines = engines
        self.stages = stages
        self.settings = settings
        self._publish = publish
        self.echo = echo
        self._kept = KeptEnergy(chunks=KEPT_WINDOW)
        self.checks: set[asyncio.Task[None]] = set()
        """Stop checks (speech-to-text of a burst) still running."""

    @property
    def echo(self) -> EchoCanceller:
        return self._echo

    @echo.setter
    def echo(self, echo: EchoCanceller) -> None:
        """With a canceller, a burst it took most of is the appliance's own voice (the
        double-talk gate); without one, every burst is checked."""
        self._echo = echo
        self._stop_listener = StopListener(min_kept_db=DOUBLE_TALK_KEPT_DB if echo.active else None)

    async def hear(
        self, chunk: AudioChunk, engines: Listening, pre_roll: PreRoll
    ) -> Detection | None:
        """Audio heard while a reply is produced or spoken. The wake word's detection when
        it interrupted the reply (a new request should be captured), else None."""
        listen = self.stages[Stage.LISTEN]
        played = (
            self.speaker.sink.played_before(chunk.captured_at, len(chunk.samples))
            if (chunk.captured_at)
            else np.zeros(len(chunk.samples), dtype=np.int16)
        )
        cleaned = await listen.run(self.echo.process, chunk.samples, played)
        heard = AudioChunk(cleaned, chunk.start)
        self._kept.add(chunk.samples, cleaned)
        pre_roll.append(heard)
        control = self.speaker.active
        if not self.settings.conversation.barge_in or control is None or control.interrupted_by:
            return None
        threshold = barge_in_threshold(
            self.echo.active,
            self._kept,
            self.settings.barge_in_threshold or None,
            engines.wake.threshold,
        )
        detection = await listen.run(engines.wake.process, cleaned, threshold)
        if detection is not None and self._its_own_name(control):
            _LOGGER.info(
                "wake word (score %.3f) over the reply ignored: the reply just named it",
                detection.score,
            )
            detection = None
        if detection is not None:
            self.interrupt("wake")
            return detection
        if self._heard_stop_keyword(engines):
            self.interrupt("stop", detected_at=time.monotonic())
            return None
        probability = await listen.run(engines.vad.speech_probability, cleaned)
        burst = self._stop_listener.feed(heard, probability, chunk.samples)
        if burst is not None:
            task = asyncio.create_task(self._check_stop(control, burst, engines))
            self.checks.add(task)
            task.add_done_callback(self.checks.discard)
        return None

    def interrupt(self, by: str, *, detected_at: float | None = None) -> bool:
        """Stop the reply being spoken, now: the sink drops its queue (ahead of any queued
        audio), the LLM stops writing, the turn ends as "interrupted". Safe to call when
        nothing is playing (returns False)."""
        control = self.speaker.active
        if control is None or control.interrupted_by:
            return False
        control.interrupted_by = by
        control.cancel.set()
        sink = self.speaker.sink
        sink.interrupt()
        stopped = time.monotonic()
        self._stop_listener.reset()
        self._publish(
            ev.Interrupted,
            turn=control.turn,
            by=by,
            reaction_seconds=round(stopped - (detected_at or stopped), 3),
            heard=control.heard(sink.played_seconds()),
        )
        return True

    def _its_own_name(self, control: ReplyControl) -> bool:
        """The reply just said the wake word's name (the longest word of the phrase,
        "jarvis" in "hey jarvis"): a detection now is its own voice."""
        name = max(self.settings.wake_phrase.split(), key=len, default="")
        return control.said_lately(self.speaker.sink.played_seconds(), name)

    def _heard_stop_keyword(self, engines: Listening) -> bool:
        """The keyword head on the embeddings the wake detector just computed. Only with
        echo cancellation: at full level its own voice saying "stopped" would be a stop."""
        stop = self.engines.stop
        embeddings = engines.wake.embeddings
        if stop is None or embeddings is None or not self.echo.active:
            return False
        gate_open = self._kept.someone_else()
        detection = stop.check(embeddings.recent(stop.window), allowed=gate_open)
        kept = self._kept.db()
        if not gate_open and stop.last_score >= stop.threshold:
            _LOGGER.debug(
                "stop keyword score %.3f ignored: the canceller removed %.1f dB, its own voice",
                stop.last_score,
                -kept,
            )
        if detection is None:
            return False
        _LOGGER.info(
            "stop keyword heard over the reply (score %.3f, %.1f dB kept)", detection.score, kept
        )
        return True

    async def _check_stop(
        self, control: ReplyControl, burst: np.ndarray, engines: Listening
    ) -> None:
        detected = time.monotonic()
        text = await self.stages[Stage.STT].run(engines.stt.transcribe, int16_to_float(burst))
        spoken = " ".join(sentence for sentence, _ in control.sentences)
        _LOGGER.debug("heard while speaking (%.1f s): %r", len(burst) / PIPELINE_RATE, text)
        phrases = self.settings.stop_phrases
        if not stop_over_echo(text, spoken, phrases):
            return
        if echoes(text, spoken) and any(p in spoken.lower() for p in phrases):
            return  # its own voice saying a stop word
        if self.speaker.active is control:
            self.interrupt("stop", detected_at=detected)
