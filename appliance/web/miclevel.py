"""The "test microphone" meter: levels of the audio the pipeline is hearing, taken from
the live source as it passes (a second stream on the same device may not open)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from appliance.audio.format import AudioChunk


class LevelTap:
    """Wraps audio sources; keeps (time, dBFS) per chunk for the last minute."""

    def __init__(self) -> None:
        self._levels: deque[tuple[float, float]] = deque(maxlen=750)  # 60 s of 80 ms

    def wrap(self, source: Any) -> TappedSource:
        return TappedSource(source, self)

    def add(self, samples: np.ndarray) -> None:
        rms = float(np.sqrt(np.mean((samples.astype(np.float64) / 32768.0) ** 2)))
        self._levels.append((time.monotonic(), 20 * math.log10(max(rms, 1e-5))))

    async def levels(self, seconds: float) -> list[float]:
        """Wait `seconds`, then the level of each chunk heard meanwhile (dBFS, ≥ −100)."""
        started = time.monotonic()
        await asyncio.sleep(seconds)
        return [round(db, 1) for t, db in list(self._levels) if t >= started]


class TappedSource:
    def __init__(self, source: Any, tap: LevelTap) -> None:
        self._source = source
        self._tap = tap
        self.live = source.live

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        async for chunk in self._source.chunks():
            self._tap.add(chunk.samples)
            yield chunk
