from __future__ import annotations

from typing import Protocol

import numpy as np


class TextToSpeech(Protocol):
    sample_rate: int

    def synthesize(self, text: str) -> np.ndarray:
        """Mono int16 audio at `sample_rate` for the text. Blocking: call from a thread."""

    def set_length_scale(self, length_scale: float) -> None:
        """The speaking rate from the next sentence on: above 1 slower, below 1 faster (the
        config page's `tts.length_scale`, applied without a restart)."""
