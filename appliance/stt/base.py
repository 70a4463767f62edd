from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


class SpeechToText(Protocol):
    def transcribe(self, audio: np.ndarray, prompt: str = "") -> str:
        """Text of 16 kHz mono float32 audio in [-1, 1]. Blocking: call from a thread.
        `prompt` primes the recogniser with words it should expect."""


@runtime_checkable
class PhraseScorer(Protocol):
    def score(self, heard: str, texts: Sequence[str]) -> list[float] | None:
        """Each text's log-likelihood for the audio last transcribed as `heard`; None
        when that audio is gone (so no texts asks only whether it is still there).
        Blocking: call from a thread."""


@runtime_checkable
class Relistener(Protocol):
    def relisten(self, heard: str, prompt: str) -> str | None:
        """The audio last transcribed as `heard`, transcribed again with `prompt`; None
        when that audio is gone. Blocking: call from a thread."""
