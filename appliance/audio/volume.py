"""The speaker's volume, in software: a gain on everything played, and a mute. Home
Assistant's media player (appliance/satellite) sets it; a board has no mixer we could
count on."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from appliance.audio.sinks import AudioSink


class Volume:
    def __init__(self, level: float = 1.0) -> None:
        self._level = 1.0
        self.muted = False
        self._watchers: list[Callable[[], None]] = []
        self.set(level)

    @property
    def level(self) -> float:
        return self._level

    def set(self, level: float) -> None:
        """0 (silent) to 1 (as the audio was made); outside that is clipped."""
        self._level = min(1.0, max(0.0, float(level)))
        self._changed()

    def mute(self, muted: bool) -> None:
        self.muted = bool(muted)
        self._changed()

    def watch(self, watcher: Callable[[], None]) -> None:
        self._watchers.append(watcher)

    def _changed(self) -> None:
        for watcher in self._watchers:
            watcher()

    @property
    def gain(self) -> float:
        return 0.0 if self.muted else self._level**2  # loudness follows the square


class VolumeSink:
    """Plays through `inner` at the volume's gain (samples untouched at full volume)."""

    def __init__(self, inner: AudioSink, volume: Volume) -> None:
        self.inner = inner
        self.volume = volume

    async def play(self, samples: np.ndarray, rate: int) -> None:
        gain = self.volume.gain
        if gain != 1.0:
            samples = (samples.astype(np.float32) * gain).astype(np.int16)
        await self.inner.play(samples, rate)

    async def drain(self) -> None:
        await self.inner.drain()

    def interrupt(self) -> None:
        self.inner.interrupt()

    def played_seconds(self) -> float:
        return self.inner.played_seconds()

    def played_before(self, end: float, samples: int) -> np.ndarray:
        return self.inner.played_before(end, samples)
