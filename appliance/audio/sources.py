"""Audio sources: where the pipeline's audio comes from.

A source is an async iterator of `AudioChunk`s. `live` sources (a microphone, or a file
played at real-time pace) keep producing while a turn is being answered; file sources
that are read as fast as possible wait for the turn instead, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.audio.format import PIPELINE_RATE, AudioChunk
from appliance.audio.wav import load_for_pipeline

DEFAULT_CHUNK_SAMPLES = 1280
"""80 ms at 16 kHz: the frame size openWakeWord is built for."""


class AudioSource(Protocol):
    live: bool
    """True when audio arrives at the pace of a clock and is not held back for a turn."""

    def chunks(self) -> AsyncIterator[AudioChunk]: ...


class ArraySource:
    """16 kHz mono int16 samples in memory, as a stream of chunks.

    With `realtime=True` chunks are released at the pace a microphone would deliver
    them, so the latencies measured downstream are the ones a user would see.
    """

    def __init__(
        self,
        samples: np.ndarray,
        *,
        realtime: bool = False,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
        tail_silence: float = 1.0,
    ) -> None:
        samples = np.asarray(samples, dtype=np.int16)
        # A recording that stops mid-sentence still needs silence for the end-pointer.
        tail = np.zeros(int(tail_silence * PIPELINE_RATE), dtype=np.int16)
        self._samples = np.concatenate([samples, tail])
        self.live = realtime
        self._chunk = chunk_samples

    @property
    def duration(self) -> float:
        return len(self._samples) / PIPELINE_RATE

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        started = time.monotonic()
        for offset in range(0, len(self._samples), self._chunk):
            block = self._samples[offset : offset + self._chunk]
            if len(block) < self._chunk:
                block = np.pad(block, (0, self._chunk - len(block)))
            chunk = AudioChunk(block, start=offset / PIPELINE_RATE)
            if self.live:
                delay = started + chunk.end - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                chunk = AudioChunk(block, start=chunk.start, captured_at=time.monotonic())
            else:
                # Let other tasks (event writers, a running turn) breathe between chunks.
                await asyncio.sleep(0)
            yield chunk


class WavFileSource(ArraySource):
    """A WAV file of any PCM format treated as the microphone."""

    def __init__(self, path: Path, *, realtime: bool = False, tail_silence: float = 1.0) -> None:
        self.path = Path(path)
        super().__init__(load_for_pipeline(self.path), realtime=realtime, tail_silence=tail_silence)
