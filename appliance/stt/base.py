from __future__ import annotations

from typing import Protocol

import numpy as np


class SpeechToText(Protocol):
    def transcribe(self, audio: np.ndarray, prompt: str = "") -> str:
        """Text of 16 kHz mono float32 audio in [-1, 1]. Blocking: call from a thread.
        `prompt` primes the recogniser with words it should expect."""
