"""The appliance hearing itself, on purpose: a live source that mixes what the speaker
played back into the microphone signal, as a room would, for tests and the benchmark."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from appliance.audio.format import PIPELINE_RATE, AudioChunk
from appliance.audio.sinks import PlaybackLog
from appliance.audio.sources import DEFAULT_CHUNK_SAMPLES


class EchoRoom:
    """A microphone in a room with the speaker: the input recording plus the played audio,
    delayed, attenuated and with a short decaying tail (two reflections)."""

    live = True

    def __init__(
        self,
        samples: np.ndarray,
        played: PlaybackLog,
        *,
        gain_db: float = -6.0,
        delay: float = 0.03,
        tail_seconds: float = 1.0,
    ) -> None:
        tail = np.zeros(int(tail_seconds * PIPELINE_RATE), dtype=np.int16)
        self._samples = np.concatenate([np.asarray(samples, dtype=np.int16), tail])
        self._played = played
        self._gain = 10 ** (gain_db / 20)
        self._delay = delay
        self.echo_seconds = 0.0
        """How much of the input carried an audible echo (for per-hour figures)."""

    @property
    def duration(self) -> float:
        return len(self._samples) / PIPELINE_RATE

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        n = DEFAULT_CHUNK_SAMPLES
        started = time.monotonic()
        for offset in range(0, len(self._samples) - n + 1, n):
            due = started + (offset + n) / PIPELINE_RATE
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            # A room's echo is continuous: cut it on the ideal timeline (`due`). The chunk
            # is stamped as a microphone thread would stamp it: a few ms of jitter after
            # capture, even when the pipeline reading the chunks has fallen behind.
            heard = min(due, time.monotonic())
            echo = self._played.window(heard - self._delay, n).astype(np.float64)
            echo += 0.4 * self._played.window(heard - self._delay - 0.015, n)
            echo += 0.15 * self._played.window(heard - self._delay - 0.04, n)
            captured = min(time.monotonic(), due + 0.005)
            if np.abs(echo).max() > 300:
                self.echo_seconds += n / PIPELINE_RATE
            mixed = self._samples[offset : offset + n] + self._gain * echo
            mixed = np.clip(mixed, -32768, 32767).astype(np.int16)
            yield AudioChunk(mixed, offset / PIPELINE_RATE, captured_at=captured)
