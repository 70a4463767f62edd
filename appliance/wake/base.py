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

    def process(self, samples: np.ndarray, threshold: float | None = None) -> Detection | None:
        """Score one 80 ms chunk of 16 kHz int16 audio; a Detection when the word was heard
        (its score at least `threshold`, or the detector's own threshold when None)."""

    def reset(self) -> None:
        """Forget buffered audio (after a detection or after a turn)."""
