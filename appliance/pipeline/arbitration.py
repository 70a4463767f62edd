"""Which box answers a wake word several heard (`pipeline.arbiter`, appliance/rooms): the
core asks before it starts listening to the request, and a box that lost goes back to
waiting for the wake word, without a sound."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from appliance.audio.format import AudioChunk


class WakeArbiter(Protocol):
    async def decide(self, wake_word: str, score: float, level_db: float) -> bool:
        """Whether this box answers the wake word it just heard (with that score, at that
        speech level); False: another box heard it better and answers."""
        ...


def speech_level(chunks: Sequence[AudioChunk], seconds: float = 1.2) -> float:
    """How loud the wake word was here, in dBFS: the loudest quarter of its 20 ms frames
    over the last `seconds` (near the speaker it is louder; noise between words does not
    count)."""
    if not chunks:
        return -120.0
    audio = np.concatenate([c.samples for c in chunks]).astype(np.float64) / 32768.0
    audio = audio[-int(seconds * 16_000) :]
    frames = audio[: len(audio) // 320 * 320].reshape(-1, 320)
    if not len(frames):
        return -120.0
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = np.sort(rms)[-max(1, len(rms) // 4) :]
    return float(20 * np.log10(max(float(loud.mean()), 1e-6)))
