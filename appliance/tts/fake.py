"""A TTS for unit tests: a short tone per word, so reply audio has a predictable length."""

from __future__ import annotations

import time

import numpy as np

from appliance.errors import TextToSpeechError


class ToneTts:
    sample_rate = 16_000

    def __init__(self, seconds_per_word: float = 0.1, *, delay: float = 0.0) -> None:
        self.seconds_per_word = seconds_per_word
        self.delay = delay
        self.spoken: list[str] = []
        self.length_scale = 1.0
        self.fail_on: set[str] = set()
        self.busy: list[tuple[float, float]] = []
        """When each sentence was synthesised: (start, end), time.monotonic."""

    def set_length_scale(self, length_scale: float) -> None:
        self.length_scale = length_scale

    def synthesize(self, text: str) -> np.ndarray:
        started = time.monotonic()
        if any(word in text for word in self.fail_on):
            raise TextToSpeechError(f"tone TTS told to fail on {text!r}")
        if self.delay:
            time.sleep(self.delay)
        self.spoken.append(text)
        self.busy.append((started, time.monotonic()))
        n = int(len(text.split()) * self.seconds_per_word * self.length_scale * self.sample_rate)
        t = np.arange(n) / self.sample_rate
        return (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
