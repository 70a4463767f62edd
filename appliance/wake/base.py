from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detection:
    wake_word: str
    score: float


class WakeWordDetector(Protocol):
    name: str
    threshold: float
    """Its own trigger score (the config page's wake sensitivity sets it)."""
    embeddings: EmbeddingSource | None
    """The speech embeddings it computes anyway, for the stop keyword; None if none."""

    def process(self, samples: np.ndarray, threshold: float | None = None) -> Detection | None:
        """Score one 80 ms chunk of 16 kHz int16 audio; a Detection when the word was heard
        (its score at least `threshold`, or the detector's own threshold when None)."""

    def reset(self) -> None:
        """Forget buffered audio (after a detection or after a turn)."""


class EmbeddingSource(Protocol):
    def recent(self, count: int) -> np.ndarray:
        """The last `count` speech embeddings, oldest first: shape (count, 96)."""


class StopKeywordDetector(Protocol):
    """Hears "stop" over the appliance's own voice, from the speech embeddings the wake
    detector computes anyway (`appliance.wake.stopword`)."""

    window: int
    """How many of the latest embeddings one check reads."""
    threshold: float
    last_score: float
    """The score of the last check, heard or not (for the logs)."""

    def check(self, recent: np.ndarray, *, allowed: bool = True) -> Detection | None:
        """A detection when "stop" was said; `allowed=False` scores only (the double-talk
        gate says the voice is the appliance's own)."""

    def reset(self) -> None: ...
