"""Interrupting the appliance while it speaks: recognising "stop", telling the user's
voice from the appliance's own, and working out what was heard before the cut."""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from appliance.audio.format import AudioChunk

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
