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


class LiveTranscription(Protocol):
    """One request whose audio goes to the recogniser while it is heard."""

    def feed(self, samples: np.ndarray) -> None:
        """The next int16 samples. Never blocks."""

    def finish(self, audio: np.ndarray) -> str | None:
        """The transcript of float `audio`, when it is what was fed; else None. Blocking."""

    def cancel(self) -> None:
        """Drop it. Never blocks."""


@runtime_checkable
class ListensLive(Protocol):
    def listen(self, heard: np.ndarray) -> LiveTranscription:
        """A request that begins with int16 `heard`. Never blocks."""


@runtime_checkable
class LiveStt(Protocol):
    """Speech-to-text that takes a request while it is heard: the capture hands it the
    audio from the start of speech on, and the `transcribe` that follows uses it when
    given the same audio."""

    def begin_live(self, heard: np.ndarray) -> None:
        """Speech started; int16 `heard` is the request so far. Never blocks."""

    def feed_live(self, samples: np.ndarray) -> None:
        """The next int16 samples of that request. Never blocks."""

    def end_live(self) -> None:
        """The request was dropped, or the next one begins. Never blocks."""
