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

SETTLED = 0.06
"""How long after a moment the playback log is final for it: a sink thread woken late
logs its next block up to 50 ms back in time (`RealTimeSink._log_time`), as the sound
card's buffer played on meanwhile. A chunk is delivered this long after it was heard,
as a capture period arrives after its sound, so its echo is what was really played."""


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
        hold_at: float | None = None,
        hold_until_played: float = 1.0,
        hold_limit: float = 60.0,
    ) -> None:
        """`hold_at`: the recording stops at this second (silence goes on instead) until
        the speaker has played `hold_until_played` seconds in a row, or `hold_limit`
        seconds have passed: what is said next then lands over a reply, however long the
        reply takes to start on a loaded machine."""
        tail = np.zeros(int(tail_seconds * PIPELINE_RATE), dtype=np.int16)
        self._samples = np.concatenate([np.asarray(samples, dtype=np.int16), tail])
        self._played = played
        self._gain = 10 ** (gain_db / 20)
        self._delay = delay
        self._hold_at = None if hold_at is None else int(hold_at * PIPELINE_RATE)
        self._hold_until = hold_until_played
        self._hold_limit = hold_limit
        self.held_seconds = 0.0
        """How long the recording was held at `hold_at`."""
        self.echo_seconds = 0.0
        """How much of the input carried an audible echo (for per-hour figures)."""

    @property
    def duration(self) -> float:
        return len(self._samples) / PIPELINE_RATE

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        n = DEFAULT_CHUNK_SAMPLES
        started = time.monotonic()
        offset = emitted = 0  # samples of the recording used / of the stream sent
        playing = 0.0  # seconds the speaker has been playing, in a row
        holding = self._hold_at is not None
        silence = np.zeros(n, dtype=np.int16)
        while offset + n <= len(self._samples):
            due = started + (emitted + n) / PIPELINE_RATE
            delay = due + SETTLED - time.monotonic()
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
            audible = bool(np.abs(echo).max() > 300)
            if audible:
                self.echo_seconds += n / PIPELINE_RATE
            playing = playing + n / PIPELINE_RATE if audible else 0.0
            if holding and self._hold_at is not None and offset >= self._hold_at:
                holding = playing < self._hold_until and self.held_seconds < self._hold_limit
            if holding and self._hold_at is not None and offset >= self._hold_at:
                said = silence
                self.held_seconds += n / PIPELINE_RATE
            else:
                said = self._samples[offset : offset + n]
                offset += n
            mixed = np.clip(said + self._gain * echo, -32768, 32767).astype(np.int16)
            yield AudioChunk(mixed, emitted / PIPELINE_RATE, captured_at=captured)
            emitted += n
